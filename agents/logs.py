"""Logging for agents: a file per agent for local runs, JSON on stdout in a container.

Inside a cluster the root filesystem is read-only and logs belong to the container runtime, so
agents write JSON lines to stdout (one object per record, easy to ship and query). Local runs
(``--log-dir``) also write the seed's per-agent files (``logs/data_agent.log``, …).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from tradingbot_agents.config import RuntimeSettings
from tradingbot_agents.kinds import AgentKind

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def __init__(self, agent: str) -> None:
        super().__init__()
        self.agent = agent

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "agent": self.agent,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def in_container() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def configure_logging(kind: AgentKind, settings: RuntimeSettings) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.DEBUG if settings.debug else logging.INFO)
    use_json = settings.log_format == "json" or (settings.log_format == "auto" and in_container())
    stream = logging.StreamHandler(sys.stdout if use_json else sys.stderr)
    stream.setFormatter(JsonFormatter(kind.value) if use_json else logging.Formatter(_TEXT_FORMAT))
    root.addHandler(stream)
    if settings.log_dir:
        directory = Path(settings.log_dir)
        directory.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(directory / kind.log_file, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
        root.addHandler(file_handler)
    # Third-party chatter stays at WARNING unless debugging.
    for noisy in ("nats", "uvicorn", "uvicorn.access", "httpx", "httpcore", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if settings.debug else logging.WARNING)
