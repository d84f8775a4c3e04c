"""The worker tests' fixtures (simulator, configs, a plain bus); `started` comes from tests/conftest.py."""

from tests.worker.conftest import client_bus, sim, trading_config

__all__ = ["client_bus", "sim", "trading_config"]
