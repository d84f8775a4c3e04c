"""Render a :class:`SystemStatus` as the table ``tradingbot status`` and the demo print."""

from __future__ import annotations

from tradingbot_agents.messages import SystemStatus


def _fmt(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.1f}{suffix}"


def status_table(status: SystemStatus) -> str:
    stats = status.system_stats
    lines = [
        f"bot {status.bot}: health {stats.system_health:.1f}%  agents {stats.agents_total} "
        f"(ok {stats.agents_ok}, degraded {stats.agents_degraded}, failed {stats.agents_failed})  "
        f"cache hit rate {_fmt(status.cache_stats.hit_rate_percent, '%')}",
    ]
    header = f"{'AGENT':<40} {'KIND':<15} {'HEALTH':<9} {'SCORE':>5} {'SEEN':>6} {'LAG ms':>7} " \
             f"{'QUEUE':>5} {'MSG/s':>7} {'CPU%':>5} {'RSS MB':>7}  REASON"
    lines.append(header)
    for state in status.agents.values():
        load = state.load
        lines.append(
            f"{state.agent_id[:40]:<40} {state.kind.value:<15} {state.health.status.value:<9} "
            f"{state.score:>5.0f} {state.last_seen_s:>5.1f}s {load.loop_lag_ms:>7.1f} {load.queue_depth:>5} "
            f"{load.msgs_per_s:>7.1f} {load.cpu_percent:>5.1f} {load.rss_mb:>7.1f}  {state.health.reason}"
        )
    return "\n".join(lines)
