from tests.worker.conftest import client_bus, sim, started, trading_config

__all__ = ["client_bus", "sim", "started", "trading_config"]
