// The dashboard's browser side: fetches /api/snapshot every 2 s and redraws the page. No
// framework. Every string from the server (agent ids and identities are chosen by whoever runs an
// agent, dial addresses by whoever asks for a dial) goes into the page through textContent or
// setAttribute on a fixed attribute name, never through innerHTML, so none of it can become markup.
// The page's Content-Security-Policy forbids inline scripts as a second line of defence.
"use strict";

const REFRESH_MS = 2000;

/** Builds an element; `children` are nodes or strings (strings become text nodes). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  const h = Math.floor(s / 3600);
  return h < 48 ? `${h}h ${Math.floor((s % 3600) / 60)}m` : `${Math.floor(h / 24)}d ${h % 24}h`;
}

const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });

function identities(ids) {
  const parts = [];
  for (const key of ["host", "ipv4", "ipv6", "cidr"]) for (const v of ids[key] || []) parts.push(`${key}=${v}`);
  if (ids.defaultRoute) parts.push("default-route");
  return parts.length ? parts.join(" ") : "(none)";
}

/** Replaces a table body; `rows` are arrays of cells (strings or nodes), `empty` the placeholder. */
function fillTable(id, rows, empty) {
  const body = document.getElementById(id);
  const width = body.closest("table").querySelectorAll("th").length;
  const out = rows.length ? rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c)))) : [el("tr", { class: "empty" }, el("td", { colspan: width }, empty))];
  body.replaceChildren(...out);
}

function card(label, value, tone) {
  return el("div", { class: `card ${tone}`, "data-card": label }, el("div", { class: "value" }, value), el("div", { class: "label" }, label));
}

function render(s) {
  document.getElementById("server-id").textContent = s.serverId;
  const ready = document.getElementById("readiness");
  ready.textContent = s.isReady ? "ready" : "not ready: no agent for the first proxy strategy";
  ready.className = `badge ${s.isReady ? "ok" : "bad"}`;
  const memTone = s.memory.isPaused ? "bad" : s.memory.usedBytes > s.memory.limitBytes / 2 ? "warn" : "ok";
  document.getElementById("cards").replaceChildren(
    card("agents", s.counts.agents, s.counts.agents > 0 ? "ok" : "bad"),
    card("connections", s.counts.connections, "neutral"),
    card("pending dials", s.counts.pendingDials, s.counts.pendingDials > 0 ? "warn" : "neutral"),
    card("recent dial failures", s.counts.recentFailures, s.counts.recentFailures > 0 ? "bad" : "ok"),
    card("servers", s.serverCount, "neutral"),
    card("memory", `${bytes(s.memory.usedBytes)} / ${bytes(s.memory.limitBytes)}${s.memory.isPaused ? " (paused)" : ""}`, memTone),
  );
  fillTable("agents-body", s.agents.map((a) => [
    el("span", { class: "mono" }, a.agentId),
    identities(a.identifiers),
    a.peerAddress,
    a.authenticatedAs,
    `${clock(a.connectedAt)} (${duration(s.takenAt - a.connectedAt)})`,
    String(a.connections),
    String(a.pendingDials),
    bytes(a.bytesToAgent),
    bytes(a.bytesFromAgent),
    el("span", { class: `badge ${a.isDraining ? "warn" : "ok"}` }, a.isDraining ? "draining" : "serving"),
    a.credit ? "credit" : "upstream",
  ]), "no agent is connected");
  fillTable("connections-body", s.connections.map((c) => [
    el("span", { class: "mono" }, c.agentId),
    el("span", { class: "mono" }, c.connectID),
    duration(c.ageMs),
    bytes(c.bytesToAgent),
    bytes(c.bytesFromAgent),
    c.pausesAgentStream
      ? el("span", {}, bytes(c.queuedBytes + c.bufferedBytes), " ", el("span", { class: "badge warn", title: "its reader fell behind the slow-consumer cap: the agent's stream waits for it" }, "reader behind: agent stream paused"))
      : bytes(c.queuedBytes + c.bufferedBytes),
  ]), "no live connection");
  fillTable("pending-body", s.pendingDials.map((p) => [p.address, el("span", { class: "mono" }, p.agentId), `${Math.round(p.waitingMs)} ms`]), "no dial is waiting");
  fillTable("failures-body", s.recentFailures.map((f) => [
    clock(f.at),
    f.address,
    f.agentId === null ? "—" : el("span", { class: "mono" }, f.agentId),
    el("span", { class: "badge bad" }, f.reason),
    f.error,
    el("span", { class: "diagnosis" }, f.explanation),
  ]), "no failed dial");
}

function setStatus(ok, text) {
  const status = document.getElementById("updated");
  status.textContent = text;
  status.className = ok ? "fresh" : "stale";
}

async function refresh() {
  try {
    const res = await fetch("api/snapshot", { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const snapshot = await res.json();
    render(snapshot);
    document.body.dataset.loaded = "true";
    setStatus(true, `last updated ${clock(Date.now())}`);
  } catch (err) {
    setStatus(false, `update failed at ${clock(Date.now())}: ${err && err.message ? err.message : String(err)}; showing older data`);
  } finally {
    // One fetch at a time: the next is scheduled after this one finished.
    setTimeout(refresh, REFRESH_MS);
  }
}

refresh();
