"""A stand-in agent for tests that need an agent process of a kind not built yet.

It runs on the real runtime (heartbeats, HTTP, bus) and does one visible thing: answers
``<prefix>.test.echo.<kind>`` requests and counts the messages it handled, so tests can tell it is
alive and processing. The product holds no stubs; this lives in tests/ only.
"""

from __future__ import annotations

import argparse
import sys

from nats.aio.msg import Msg

from tradingbot_agents.config import load_config
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.logs import configure_logging
from tradingbot_agents.messages import Message
from tradingbot_agents.runtime import Agent, run_agent


class Echo(Message):
    text: str


def echo_subject(prefix: str, kind: AgentKind) -> str:
    return f"{prefix}.test.echo.{kind.value}"


def make_standin(kind: AgentKind) -> type[Agent]:
    class StandIn(Agent):
        handled = 0

        async def setup(self) -> None:
            await self.bus.serve(echo_subject(self.subjects.prefix, self.kind), Echo, self._echo)
            await self.bus.subscribe(f"{self.subjects.prefix}.test.junk", Echo, self._junk)

        async def _echo(self, request: Echo) -> Echo:
            self.handled += 1
            if request.text == "crash":
                raise RuntimeError("asked to crash in a handler")
            return Echo(text=f"{self.agent_id}:{request.text}")

        async def _junk(self, _value: Echo, _msg: Msg) -> None:
            self.handled += 1

        def stats(self) -> dict[str, float]:
            return {"handled": float(self.handled)}

    StandIn.kind = kind
    StandIn.__name__ = f"StandIn[{kind.value}]"
    return StandIn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", required=True)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    kind = AgentKind.from_cli(args.kind)
    config = load_config(args.config)
    configure_logging(kind, config.runtime)
    cls = make_standin(kind)
    return run_agent(lambda: cls(config))


if __name__ == "__main__":
    sys.exit(main())
