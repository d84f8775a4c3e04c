"""``make e2e``: the operator against a real cluster from ``KUBECONFIG`` (kind, k3d, ...). The
``e2e`` marker is registered in pyproject.toml."""
