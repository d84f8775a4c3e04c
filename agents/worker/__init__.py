"""The trading workers: lease pairs, compute signals, pre-check with risk, execute (paper or live)."""
