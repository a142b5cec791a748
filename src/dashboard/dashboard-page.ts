// The dashboard's HTML: a fixed shell with inline CSS and no data in it; dashboard-client.js
// fills it from /api/snapshot. Nothing here is interpolated, so nothing needs escaping.
export const dashboardHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nodetunnel server</title>
<link rel="icon" href="data:,">
<style>
  :root { --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --line: #d0d7de; --muted: #57606a; --bg: #f6f8fa; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; background: #fff; }
  header { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; padding: 12px 20px; border-bottom: 1px solid var(--line); background: var(--bg); }
  header h1 { font-size: 18px; margin: 0; }
  main { padding: 12px 20px 32px; }
  .mono, #server-id { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; background: var(--muted); white-space: nowrap; }
  .badge.ok { background: var(--ok); } .badge.warn { background: var(--warn); } .badge.bad { background: var(--bad); }
  #updated { margin-left: auto; color: var(--muted); }
  #updated.stale { color: var(--bad); font-weight: 600; }
  #cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 4px 0 16px; }
  .card { min-width: 130px; padding: 10px 14px; border: 1px solid var(--line); border-left-width: 6px; border-radius: 6px; }
  .card .value { font-size: 22px; font-weight: 700; }
  .card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
  .card.ok { border-left-color: var(--ok); } .card.warn { border-left-color: var(--warn); } .card.bad { border-left-color: var(--bad); }
  .card.bad .value { color: var(--bad); }
  h2 { font-size: 15px; margin: 18px 0 6px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: break-word; }
  /* Ids are chosen by whoever runs an agent: long ones wrap anywhere instead of widening the table. */
  td .mono { display: inline-block; min-width: 8ch; max-width: 32ch; overflow-wrap: anywhere; }
  th { font-size: 12px; color: var(--muted); background: var(--bg); }
  tr.empty td { color: var(--muted); font-style: italic; }
  .diagnosis { color: #0a3069; }
</style>
</head>
<body>
<header>
  <h1>nodetunnel server <span id="server-id"></span></h1>
  <span id="readiness" class="badge">loading</span>
  <span id="updated">waiting for the first update</span>
</header>
<main>
  <noscript><p>This page needs JavaScript; the same data is at <a href="api/snapshot">api/snapshot</a>.</p></noscript>
  <div id="cards"></div>
  <h2>Connected agents</h2>
  <table id="agents"><thead><tr><th>agent</th><th>identities</th><th>peer</th><th>authenticated as</th><th>connected since</th><th>connections</th><th>pending</th><th>bytes to agent</th><th>bytes from agent</th><th>state</th><th>flow control</th></tr></thead><tbody id="agents-body"></tbody></table>
  <h2>Live connections</h2>
  <table id="connections"><thead><tr><th>agent</th><th>connect id</th><th>age</th><th>bytes to agent</th><th>bytes from agent</th><th>queued</th></tr></thead><tbody id="connections-body"></tbody></table>
  <h2>Pending dials</h2>
  <table id="pending"><thead><tr><th>address</th><th>agent</th><th>waiting</th></tr></thead><tbody id="pending-body"></tbody></table>
  <h2>Recent dial failures</h2>
  <table id="failures"><thead><tr><th>time</th><th>address</th><th>agent</th><th>reason</th><th>error</th><th>diagnosis</th></tr></thead><tbody id="failures-body"></tbody></table>
</main>
<script src="dashboard.js"></script>
</body>
</html>
`;
