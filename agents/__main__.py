import signal
import sys


def _exit_now(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


# First thing: a SIGTERM while still starting up exits cleanly (nothing to drain yet); the agent
# runtime replaces this with its graceful handler once its event loop runs.
signal.signal(signal.SIGTERM, _exit_now)

from tradingbot_agents.cli import main  # noqa: E402

sys.exit(main())
