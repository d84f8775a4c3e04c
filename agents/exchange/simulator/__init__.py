"""Binance USDⓈ-M futures simulator replaying the shipped real hourly klines (see ``app``)."""

from tradingbot_agents.exchange.simulator.app import Simulator, SimulatorConfig, create_app
from tradingbot_agents.exchange.simulator.clock import ManualClock, ReplayClock
from tradingbot_agents.exchange.simulator.data import Market, load_dataset, walk_price
from tradingbot_agents.exchange.simulator.server import SimulatorServer

__all__ = ["ManualClock", "Market", "ReplayClock", "Simulator", "SimulatorConfig", "SimulatorServer",
           "create_app", "load_dataset", "walk_price"]
