import sys

from tradingbot_agents.cli import main

sys.exit(main())
