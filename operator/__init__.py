"""tradingbot operator: turns a TradingBot custom resource into per-agent Deployments and keeps them
healthy. The desired state is a pure function of the spec (:mod:`tradingbot_operator.builders`);
only :mod:`tradingbot_operator.reconcile` talks to the API server."""
