"""The coordinator's status page: one self-contained HTML document (no external assets: the cluster
may have no internet) that polls ``/status`` every two seconds and redraws itself."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tradingbot status</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; background: #0f1419; color: #e6e6e6; }
 h1 { font-size: 20px; margin: 0 0 4px; } .muted { color: #8a96a3; }
 .cards { display: flex; gap: 12px; margin: 16px 0; flex-wrap: wrap; }
 .card { background: #1b2129; border-radius: 8px; padding: 12px 16px; min-width: 140px; }
 .card b { display: block; font-size: 22px; }
 table { border-collapse: collapse; width: 100%; margin-top: 8px; }
 th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #27303a; }
 th { color: #8a96a3; font-weight: 600; }
 .ok { color: #3fb950; } .degraded { color: #d29922; } .failed { color: #f85149; }
</style></head>
<body>
<h1>tradingbot <span id="bot" class="muted"></span></h1>
<div class="muted">refreshed <span id="at">never</span></div>
<div class="cards">
 <div class="card">system health<b id="health">-</b></div>
 <div class="card">cache hit rate<b id="hit">-</b></div>
 <div class="card">exchange calls<b id="calls">-</b></div>
 <div class="card">trades<b id="trades">-</b></div>
 <div class="card">PnL<b id="pnl">-</b></div>
 <div class="card">VaR 95%<b id="var">-</b></div>
</div>
<table><thead><tr><th>agent</th><th>kind</th><th>health</th><th>score</th><th>last seen</th>
<th>loop lag ms</th><th>queue</th><th>msg/s</th><th>CPU %</th><th>RSS MB</th><th>reason</th></tr></thead>
<tbody id="agents"></tbody></table>
<script>
function fmt(v, digits, suffix) { return v === null || v === undefined ? "-" : v.toFixed(digits) + (suffix || ""); }
function cell(text, cls) {
  const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td;
}
async function refresh() {
  try {
    const s = await (await fetch("status", {cache: "no-store"})).json();
    document.getElementById("bot").textContent = s.bot;
    document.getElementById("at").textContent = new Date(s.generated_at * 1000).toLocaleTimeString();
    document.getElementById("health").textContent = fmt(s.system_stats.system_health, 1, "%");
    document.getElementById("hit").textContent = fmt(s.cache_stats.hit_rate_percent, 1, "%");
    document.getElementById("calls").textContent = s.market_data.exchange_calls;
    document.getElementById("trades").textContent = s.trading.trades;
    document.getElementById("pnl").textContent = fmt(s.trading.pnl, 2, "");
    document.getElementById("var").textContent = fmt(s.trading.var_95 === null ? null : s.trading.var_95 * 100, 2, "%");
    const body = document.getElementById("agents");
    body.replaceChildren();
    for (const a of Object.values(s.agents)) {
      const tr = document.createElement("tr");
      tr.append(cell(a.agent_id), cell(a.kind), cell(a.health.status, a.health.status), cell(fmt(a.score, 0)),
        cell(fmt(a.last_seen_s, 1, "s")), cell(fmt(a.load.loop_lag_ms, 1)), cell(a.load.queue_depth),
        cell(fmt(a.load.msgs_per_s, 1)), cell(fmt(a.load.cpu_percent, 1)), cell(fmt(a.load.rss_mb, 1)),
        cell(a.health.reason));
      body.append(tr);
    }
  } catch (e) {
    document.getElementById("at").textContent = "error: " + e;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body></html>
"""
