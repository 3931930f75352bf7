/**
 * The admin dashboard: one self-contained HTML document (inline CSS and JS, no build step, no external
 * request) that polls the JSON API and shows each pool's state, utilisation and wait times.
 *
 * It never contains data or secrets: it asks for the bearer token when the API answers 401, keeps it in
 * sessionStorage (this tab only) and sends it as a header. `#token=...` in the URL is accepted too (a
 * fragment never reaches a server or a Referer) and removed from the address bar at once. The DOM is built
 * with textContent only, so pool names cannot inject markup, and a hash-based Content-Security-Policy
 * forbids any other script, style or origin.
 */
import { createHash } from 'node:crypto';

/** How often the page polls the API. */
export const DASHBOARD_REFRESH_MS = 1500;

export interface DashboardPage {
  readonly html: string;
  /** The Content-Security-Policy the page must be served with (it allows exactly its inline code). */
  readonly contentSecurityPolicy: string;
}

const STYLE = `
:root { color-scheme: light dark; --fg: #1d2330; --muted: #667085; --bg: #f4f6fa; --card: #fff;
  --line: #d9dee8; --ok: #1a7f37; --warn: #b54708; --bad: #c01c28; --bar: #2f6feb; --bar2: #9ab8f5; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ef; --muted: #98a2b3; --bg: #11151c; --card: #1a202a;
  --line: #2c3442; --bar2: #34507f; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); }
header { display: flex; align-items: baseline; gap: 16px; padding: 14px 20px; border-bottom: 1px solid var(--line); }
h1 { font-size: 18px; margin: 0; }
#status { color: var(--muted); font-size: 13px; }
#status.error { color: var(--bad); }
main { padding: 16px 20px; display: grid; gap: 16px; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
.head { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; }
.name { font-size: 16px; font-weight: 600; margin: 0 auto 0 0; word-break: break-all; }
.badge { font-size: 12px; padding: 1px 8px; border-radius: 10px; border: 1px solid var(--line); }
.state-ready, .circuit-closed { color: var(--ok); border-color: var(--ok); }
.state-paused, .state-starting, .circuit-half-open { color: var(--warn); border-color: var(--warn); }
.state-draining, .state-closed, .circuit-open { color: var(--bad); border-color: var(--bad); }
.target { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; color: var(--muted); margin: 6px 0 10px;
  word-break: break-all; }
.bar { position: relative; height: 12px; border-radius: 6px; background: var(--line); overflow: hidden; }
.bar span { position: absolute; top: 0; bottom: 0; left: 0; }
.bar .size { background: var(--bar2); }
.bar .active { background: var(--bar); }
.util { display: flex; justify-content: space-between; font-size: 12px; color: var(--muted); margin: 4px 0 10px; }
dl { display: grid; grid-template-columns: repeat(4, 1fr); gap: 6px 10px; margin: 0; }
dt { font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
dd { margin: 0; font-size: 15px; font-variant-numeric: tabular-nums; }
.actions { margin-top: 12px; display: flex; gap: 8px; }
button { font: inherit; font-size: 13px; padding: 3px 12px; border-radius: 6px; border: 1px solid var(--line);
  background: var(--bg); color: var(--fg); cursor: pointer; }
#login { padding: 20px; max-width: 420px; }
#login[hidden], main[hidden] { display: none; }
#login input { font: inherit; width: 100%; padding: 6px 8px; margin: 8px 0; border: 1px solid var(--line);
  border-radius: 6px; background: var(--card); color: var(--fg); }
.empty { color: var(--muted); }
.members { margin-top: 12px; border-top: 1px solid var(--line); padding-top: 8px; }
.members[hidden] { display: none; }
.member { display: flex; align-items: center; gap: 6px; flex-wrap: wrap; font-size: 12px; padding: 3px 0; }
.member-name { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; margin-right: auto; word-break: break-all; }
.member-load { color: var(--muted); font-variant-numeric: tabular-nums; }
.health-up { color: var(--ok); border-color: var(--ok); }
.health-down { color: var(--bad); border-color: var(--bad); }
`;

const SCRIPT_BODY = `
'use strict';
const TOKEN_KEY = 'nestjs-pool-admin-token';
const here = location.pathname.replace(/\\/+$/, '');
const api = new URL(API_PATH, location.origin + here).pathname;
const $ = (id) => document.getElementById(id);
const cards = new Map();
let timer;

if (location.hash.startsWith('#token=')) {
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(location.hash.slice(7)));
  history.replaceState(null, '', location.pathname + location.search);
}

function headers() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: 'Bearer ' + token } : {};
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function ms(value) {
  return (value < 10 ? value.toFixed(1) : String(Math.round(value))) + ' ms';
}

function createCard(name) {
  const card = el('section', 'card');
  card.dataset.pool = name;
  const head = el('div', 'head');
  head.append(el('h2', 'name', name));
  const fields = {};
  for (const key of ['backend', 'state', 'circuit']) {
    fields[key] = el('span', 'badge');
    fields[key].dataset.field = key;
    head.append(fields[key]);
  }
  fields.target = el('div', 'target');
  const bar = el('div', 'bar');
  fields.sizeBar = el('span', 'size');
  fields.activeBar = el('span', 'active');
  bar.append(fields.sizeBar, fields.activeBar);
  const util = el('div', 'util');
  fields.utilisation = el('span');
  fields.capacity = el('span');
  util.append(fields.utilisation, fields.capacity);
  const list = el('dl');
  const stats = [['size', 'size'], ['active', 'active'], ['idle', 'idle'], ['waiting', 'waiting'],
    ['pending', 'pending'], ['max', 'max'], ['waitP50', 'wait p50'], ['waitP99', 'wait p99'],
    ['timeouts', 'timeouts'], ['acquired', 'acquired'], ['createErrors', 'create errors'], ['leaks', 'leaks']];
  for (const [key, label] of stats) {
    const cell = el('div');
    fields[key] = el('dd');
    fields[key].dataset.field = key;
    cell.append(el('dt', '', label), fields[key]);
    list.append(cell);
  }
  // Replicas and shards: one row per physical pool, rebuilt at each refresh.
  fields.members = el('div', 'members');
  fields.members.hidden = true;
  const actions = el('div', 'actions');
  for (const action of ['pause', 'resume']) {
    const button = el('button', '', action);
    button.type = 'button';
    button.addEventListener('click', () => act(name, action));
    actions.append(button);
  }
  card.append(head, fields.target, bar, util, list, fields.members, actions);
  return { card, fields };
}

function update({ fields }, pool) {
  const m = pool.metrics;
  fields.backend.textContent = pool.backend;
  fields.state.textContent = m.state;
  fields.state.className = 'badge state-' + m.state;
  fields.circuit.textContent = 'circuit ' + m.circuit;
  fields.circuit.className = 'badge circuit-' + m.circuit;
  fields.target.textContent = pool.target;
  const pct = (n) => (m.max > 0 ? Math.min(100, (100 * n) / m.max) : 0);
  fields.sizeBar.style.width = pct(m.size) + '%';
  fields.activeBar.style.width = pct(m.active) + '%';
  fields.utilisation.textContent = 'utilisation ' + Math.round(pct(m.active)) + '%';
  fields.capacity.textContent = m.active + ' active / ' + m.size + ' open / ' + m.max + ' max';
  for (const key of ['size', 'active', 'idle', 'waiting', 'pending', 'max', 'timeouts', 'acquired',
    'createErrors', 'leaks']) {
    fields[key].textContent = String(m[key]);
  }
  fields.waitP50.textContent = ms(m.acquireWaitMs.p50);
  fields.waitP99.textContent = ms(m.acquireWaitMs.p99);
  renderMembers(fields.members, pool.members || []);
}

function renderMembers(container, members) {
  container.hidden = members.length === 0;
  const rows = members.map((member) => {
    const row = el('div', 'member');
    row.dataset.member = member.name;
    const mm = member.metrics;
    // A replica out of the read rotation is down; any member whose circuit is open cannot connect.
    const down = (member.rotation && !member.rotation.healthy) || mm.circuit === 'open';
    const health = el('span', 'badge ' + (down ? 'health-down' : 'health-up'), down ? 'down' : 'up');
    health.dataset.field = 'health';
    if (down && member.rotation && member.rotation.error) health.title = member.rotation.error;
    row.append(el('span', 'member-name', member.name), el('span', 'badge', member.role),
      el('span', 'badge state-' + mm.state, mm.state), health,
      el('span', 'member-load', mm.active + ' active / ' + mm.size + ' open / ' + mm.max + ' max'));
    return row;
  });
  container.replaceChildren(...rows);
}

function render(pools) {
  const main = $('pools');
  const seen = new Set();
  for (const pool of pools) {
    seen.add(pool.name);
    let entry = cards.get(pool.name);
    if (!entry) {
      entry = createCard(pool.name);
      cards.set(pool.name, entry);
    }
    update(entry, pool);
    main.append(entry.card);
  }
  for (const [name, entry] of cards) {
    if (!seen.has(name)) {
      entry.card.remove();
      cards.delete(name);
    }
  }
  $('empty').hidden = pools.length > 0;
}

function status(text, isError) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : '';
}

function showLogin(message) {
  $('login').hidden = false;
  $('pools').hidden = true;
  $('login-message').textContent = message;
}

async function refresh() {
  clearTimeout(timer);
  try {
    const response = await fetch(api, { headers: headers(), cache: 'no-store' });
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin('This dashboard needs the admin token.');
      status('not signed in', true);
      return;
    }
    if (!response.ok) throw new Error('HTTP ' + response.status);
    const body = await response.json();
    $('login').hidden = true;
    $('pools').hidden = false;
    render(body.pools);
    status('updated ' + new Date(body.generatedAt).toLocaleTimeString() + ' \\u00b7 ' + body.pools.length +
      ' pool(s)', false);
  } catch (error) {
    status('refresh failed: ' + error.message, true);
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

async function act(name, action) {
  try {
    const response = await fetch(api + '/' + encodeURIComponent(name) + '/' + action,
      { method: 'POST', headers: headers() });
    if (!response.ok) throw new Error('HTTP ' + response.status);
  } catch (error) {
    status(action + ' failed: ' + error.message, true);
  }
  refresh();
}

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('token').value);
  $('token').value = '';
  refresh();
});

refresh();
`;

/** Renders the page for an API at `apiPath`, resolved against the page's own URL (e.g. `../pools`). */
export function renderDashboardPage(apiPath: string): DashboardPage {
  // JSON is valid JS; escaping `<` keeps the value from closing the <script> element.
  const constants =
    `const API_PATH = ${JSON.stringify(apiPath).replace(/</g, '\\u003c')};\n` +
    `const REFRESH_MS = ${DASHBOARD_REFRESH_MS};\n`;
  const script = constants + SCRIPT_BODY;
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Connection pools</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>Connection pools</h1><span id="status">loading\u2026</span></header>
<form id="login" hidden>
<p id="login-message"></p>
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="off" required>
<button type="submit">Sign in</button>
</form>
<main id="pools"><p id="empty" class="empty" hidden>No pools are registered.</p></main>
<script>${script}</script>
</body>
</html>
`;
  const contentSecurityPolicy = [
    "default-src 'none'",
    `script-src '${sha256(script)}'`,
    `style-src '${sha256(STYLE)}'`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, contentSecurityPolicy };
}

function sha256(text: string): string {
  return `sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}`;
}
