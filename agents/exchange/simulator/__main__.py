from tradingbot_agents.exchange.simulator.server import main

main()
