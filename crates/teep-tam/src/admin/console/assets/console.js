// teep TAM console: calls only the documented admin API (/admin/openapi.json) with the
// admin token as a bearer token. Every value is written with textContent or as an SVG
// text node, never as markup: component IDs, err-msg and report text come from devices.
'use strict';

const TOKEN_KEY = 'teep-admin-token';
const POLL_MS = 2000;
// A device not heard from for this long is "not seen for a while".
const STALE_SECONDS = 3600;

let lastRendered = '';
let selectedMessage = null;
let fleetFilter = 'all';
let metricsSeen = [];

// An element with attributes and children (strings become text nodes).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'onclick') e.addEventListener('click', v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function when(secs) {
  return secs ? new Date(secs * 1000).toISOString().replace('T', ' ').replace('.000Z', 'Z') : '—';
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

class ApiFailure extends Error {
  constructor(status, code, message) { super(`${code}: ${message}`); this.status = status; this.code = code; }
}

async function api(method, path, body, contentType) {
  const headers = { Authorization: `Bearer ${token()}` };
  let payload;
  if (body instanceof ArrayBuffer) { payload = body; headers['Content-Type'] = contentType; }
  else if (body !== undefined) { payload = JSON.stringify(body); headers['Content-Type'] = 'application/json'; }
  const r = await fetch(path, { method, headers, body: payload, credentials: 'omit' });
  if (r.status === 401) { signOut(); throw new ApiFailure(401, 'unauthorized', 'sign in again'); }
  if (!r.ok) {
    let e = { error: `http_${r.status}`, message: r.statusText };
    try { e = await r.json(); } catch (_) { /* not JSON */ }
    throw new ApiFailure(r.status, e.error, e.message);
  }
  if (r.status === 204 || r.status === 201 && !(r.headers.get('content-type') || '').includes('json')) return null;
  const type = r.headers.get('content-type') || '';
  return type.includes('json') ? r.json() : r.text();
}

// The outcome of the operator's last action (kept until the next one).
function status(text, isError) {
  const s = document.getElementById('notice');
  s.textContent = text;
  s.className = isError ? 'notice error' : 'notice';
}

// ---- sign-in ----------------------------------------------------------------------

async function signIn() {
  const t = document.getElementById('token').value.trim();
  sessionStorage.setItem(TOKEN_KEY, t);
  try {
    await api('GET', '/admin/devices?limit=1');
    document.getElementById('signin-error').textContent = '';
    showApp();
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    document.getElementById('signin-error').textContent = 'The TAM refused this token.';
  }
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  document.getElementById('main').hidden = true;
  document.getElementById('nav').hidden = true;
  document.getElementById('signin-panel').hidden = false;
}

function showApp() {
  document.getElementById('signin-panel').hidden = true;
  document.getElementById('nav').hidden = false;
  document.getElementById('main').hidden = false;
  if (!location.hash) location.hash = '#/fleet';
  else refresh(true);
}

// ---- shared data ------------------------------------------------------------------

// What policy wants of `device`: manifest id -> latest sequence of a non-revoked TC.
function wanted(device, policy, tcs) {
  const p = policy.devices[device.id] || (device.class && policy.classes[device.class]) || { install: [] };
  const out = {};
  for (const id of p.install) {
    const tc = tcs.find(t => t.manifest_id === id);
    if (tc && !tc.revoked) out[id] = Math.max(...tc.versions.map(v => v.sequence));
  }
  return out;
}

function deviceState(device, policy, tcs, now) {
  if (device.revoked) return 'revoked';
  const report = device.last_reports[0];
  if (report && !report.success) return 'failed';
  const outcome = device.last_outcome;
  if (outcome && outcome.verdict !== 'affirming') return 'attestation-failed';
  if (!device.attested_at && !device.attestation_exempt) return 'attestation-failed';
  if (!device.last_contact || now - device.last_contact > STALE_SECONDS) return 'not-seen';
  const want = wanted(device, policy, tcs);
  const have = Object.fromEntries(device.installed);
  const revoked = new Set(tcs.filter(t => t.revoked).map(t => t.manifest_id));
  const behind = Object.entries(want).some(([id, seq]) => have[id] !== seq);
  const unwanted = device.installed.some(([id]) => revoked.has(id));
  return behind || unwanted ? 'updating' : 'up-to-date';
}

const STATE_NAMES = {
  'up-to-date': 'up to date', updating: 'updating', failed: 'failed',
  'attestation-failed': 'attestation failed', revoked: 'revoked', 'not-seen': 'not seen for a while',
};

function stateBadge(state) {
  return el('span', { class: `state state-${state}`, 'data-state': state }, STATE_NAMES[state]);
}

// ---- pages ------------------------------------------------------------------------

// Every device: the API lists them a page at a time, each page after the last id of the
// one before.
async function allDevices() {
  const limit = 10000;
  let all = [];
  for (let after = ''; ;) {
    const page = await api('GET', `/admin/devices?limit=${limit}${after && `&after=${after}`}`);
    all = all.concat(page);
    if (page.length < limit) return all;
    after = page[page.length - 1].id;
  }
}

async function fleetPage() {
  const [devices, policy, tcs, metrics, latest] = await Promise.all([
    allDevices(), api('GET', '/admin/policy'), api('GET', '/admin/tcs'), api('GET', '/metrics'),
    api('GET', '/admin/sessions/latest?limit=5'),
  ]);
  return {
    key: JSON.stringify([devices, policy, tcs, metrics, latest, fleetFilter, selectedMessage]),
    draw: () => [...drawFleet(devices, policy, tcs, metrics), el('h3', {}, 'Latest sessions'),
      el('div', { id: 'sessions' }, ...latest.map(drawSession)), ...messagePanel(latest)],
  };
}

function messagePanel(sessions) {
  return [el('h3', {}, 'Message'),
    el('pre', { id: 'message-json' }, selectedMessage ? messageText(sessions) : 'Click an arrow to see the decoded message.')];
}

function drawFleet(devices, policy, tcs, metrics) {
  const now = Math.floor(Date.now() / 1000);
  const states = devices.map(d => [d, deviceState(d, policy, tcs, now)]);
  const counts = el('div', { class: 'counts', id: 'counts' });
  for (const s of ['all', ...Object.keys(STATE_NAMES)]) {
    const n = s === 'all' ? states.length : states.filter(([, st]) => st === s).length;
    counts.append(el('div', {
      class: `count${fleetFilter === s ? ' selected' : ''}`, 'data-filter': s,
      onclick: () => { fleetFilter = s; refresh(true); },
    }, el('span', { class: 'n' }, n), s === 'all' ? 'all devices' : STATE_NAMES[s]));
  }
  const rows = states.filter(([, s]) => fleetFilter === 'all' || s === fleetFilter).map(([d, s]) => el('tr', { 'data-device': d.id },
    el('td', {}, el('a', { href: `#/device/${d.id}`, class: 'mono device-link' }, d.id.slice(0, 16) + '…')),
    el('td', {}, d.class || '—'), el('td', {}, stateBadge(s)),
    el('td', {}, d.installed.map(([id, seq]) => `${id} #${seq}`).join(', ') || '—'),
    el('td', {}, when(d.last_contact))));
  return [
    el('h2', {}, 'Fleet'), counts,
    el('table', { id: 'devices' }, el('tr', {}, ...['Device', 'Class', 'State', 'Installed', 'Last contact'].map(h => el('th', {}, h))), ...rows),
    drawMetrics(metrics),
  ];
}

// The /metrics summary: sessions per minute (between two polls) and errors by code.
function drawMetrics(text) {
  const sample = (name) => text.split('\n').filter(l => l.startsWith(name) && !l.startsWith('#'));
  const total = sample('teep_tam_sessions_opened_total').reduce((a, l) => a + Number(l.split(' ').pop()), 0);
  const now = Date.now();
  metricsSeen.push([now, total]);
  metricsSeen = metricsSeen.filter(([t]) => now - t <= 60000);
  const [t0, n0] = metricsSeen[0];
  const perMinute = now > t0 ? ((total - n0) * 60000 / Math.max(now - t0, POLL_MS)).toFixed(1) : '0.0';
  const errs = sample('teep_tam_err_codes_total').map(l => {
    const labels = l.slice(l.indexOf('{') + 1, l.lastIndexOf('}'));
    return [labels, l.split(' ').pop()];
  });
  const dropped = sample('teep_tam_dropped_total').map(l => [l.slice(l.indexOf('{') + 1, l.lastIndexOf('}')), l.split(' ').pop()]);
  const table = (id, title, list) => el('table', { id }, el('tr', {}, el('th', {}, title), el('th', {}, 'count')),
    ...(list.length ? list.map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', {}, v))) : [el('tr', {}, el('td', {}, 'none'), el('td', {}, '0'))]));
  return el('section', { id: 'metrics' }, el('h3', {}, 'Metrics'),
    el('p', {}, `sessions opened: ${total}, per minute (last minute): `, el('span', { id: 'sessions-per-minute' }, perMinute)),
    el('div', { class: 'metrics' }, table('err-codes', 'err-code', errs), table('dropped', 'dropped message', dropped)));
}

async function devicePage(id) {
  const path = `/admin/devices/${encodeURIComponent(id)}`;
  const [device, policy, tcs, sessions, outcomes] = await Promise.all([
    api('GET', path).catch(e => { if (e.status === 404 || e.status === 400) return null; throw e; }),
    api('GET', '/admin/policy'), api('GET', '/admin/tcs'),
    api('GET', `${path}/sessions`), api('GET', `${path}/attestations?limit=100`).catch(() => []),
  ]);
  return { key: JSON.stringify([device, policy, tcs, sessions, outcomes, selectedMessage]), draw: () => drawDevice(id, device, policy, tcs, sessions, outcomes) };
}

function drawDevice(id, device, policy, tcs, sessions, outcomes) {
  if (!device) return [el('h2', {}, 'No such device'), el('p', { class: 'mono' }, id)];
  const now = Math.floor(Date.now() / 1000);
  const want = wanted(device, policy, tcs);
  const have = Object.fromEntries(device.installed);
  const ids = [...new Set([...Object.keys(want), ...Object.keys(have)])];
  const tcRows = ids.map(m => el('tr', { 'data-tc': m }, el('td', { class: 'mono' }, m), el('td', {}, have[m] ?? '—'), el('td', {}, want[m] ?? 'not wanted'),
    el('td', {}, have[m] === want[m] ? 'up to date' : want[m] === undefined ? 'to be removed' : 'to be updated')));
  const reports = device.last_reports.map(r => el('tr', {}, el('td', {}, when(r.at)), el('td', { class: 'mono' }, r.manifest_digest.slice(0, 16) + '…'),
    el('td', {}, r.success ? 'success' : 'failed'), el('td', { class: 'report-failure' }, r.failure || '—')));
  // Every appraisal, newest first, failures included (the TAM keeps the last 100).
  const attestations = outcomes.map(o => el('tr', { 'data-verdict': o.verdict },
    el('td', {}, when(o.at)), el('td', {}, o.verdict), el('td', {}, o.detail)));
  const head = (...h) => el('tr', {}, ...h.map(x => el('th', {}, x)));
  // Releases the device failed to install, and until when the TAM waits to send them again.
  const failed = (device.failed || []).map(f => el('tr', {}, el('td', { class: 'mono' }, f.manifest_id), el('td', { class: 'mono' }, f.digest.slice(0, 16) + '…'),
    el('td', {}, String(f.failures)), el('td', {}, f.held_until > now ? when(f.held_until) : 'at the next contact')));
  const held = failed.length ? [el('p', {}, 'Failed to install (sent at once if the device asks for it, or for a new release):'),
    el('table', { id: 'device-failed' }, head('manifest', 'manifest digest', 'failures in a row', 'sent again'), ...failed)] : [];
  return [
    el('h2', {}, 'Device'),
    el('table', { id: 'identity' },
      el('tr', {}, el('th', {}, 'id'), el('td', { class: 'mono', id: 'device-id' }, device.id)),
      el('tr', {}, el('th', {}, 'class'), el('td', {}, device.class || '—')),
      el('tr', {}, el('th', {}, 'state'), el('td', {}, stateBadge(deviceState(device, policy, tcs, now)))),
      el('tr', {}, el('th', {}, 'attested'), el('td', {}, device.attestation_exempt ? 'exempt (registered key)' : when(device.attested_at))),
      el('tr', {}, el('th', {}, 'last contact'), el('td', {}, when(device.last_contact)))),
    el('h3', {}, 'Trusted Components'),
    el('table', { id: 'device-tcs' }, head('manifest', 'installed', 'policy wants', ''), ...tcRows),
    ...held,
    el('h3', {}, 'Attestation results'),
    el('table', { id: 'attestations' }, head('when', 'verdict', 'detail'), ...attestations),
    el('h3', {}, 'SUIT reports'),
    el('table', { id: 'reports' }, head('when', 'manifest digest', 'result', 'failed command'), ...reports),
    el('h3', {}, 'Sessions'),
    el('div', { id: 'sessions' }, ...sessions.map(drawSession)),
    ...messagePanel(sessions),
  ];
}

function messageText(sessions) {
  const s = sessions.find(x => x.session === selectedMessage.session);
  const m = s && s.messages[selectedMessage.index];
  return m ? JSON.stringify(m, null, 2) : '';
}

// A session as a sequence diagram: Agent and TAM lifelines, one arrow per message.
function drawSession(session) {
  const step = 44, width = 560, left = 90, right = width - 90;
  const height = 60 + step * session.messages.length;
  const d = svg('svg', { class: 'diagram', width, height, viewBox: `0 0 ${width} ${height}`, 'data-session': session.session, role: 'img' });
  d.append(svg('text', { x: left, y: 20, 'text-anchor': 'middle', class: 'actor' }, 'TEEP Agent'));
  d.append(svg('text', { x: right, y: 20, 'text-anchor': 'middle', class: 'actor' }, 'TAM'));
  d.append(svg('line', { x1: left, y1: 28, x2: left, y2: height - 8, class: 'life' }));
  d.append(svg('line', { x1: right, y1: 28, x2: right, y2: height - 8, class: 'life' }));
  session.messages.forEach((m, i) => {
    const y = 56 + i * step;
    const toTam = m.direction === 'to_tam';
    const [x1, x2] = toTam ? [left, right] : [right, left];
    const tip = toTam ? `${x2},${y} ${x2 - 10},${y - 5} ${x2 - 10},${y + 5}` : `${x2},${y} ${x2 + 10},${y - 5} ${x2 + 10},${y + 5}`;
    const g = svg('g', { class: `arrow${m.dropped ? ' dropped' : ''}`, 'data-index': i, 'data-type': m.message_type, tabindex: 0 });
    g.append(svg('rect', { x: left, y: y - 22, width: right - left, height: 30, fill: 'transparent' }));
    g.append(svg('line', { x1, y1: y, x2: toTam ? x2 - 10 : x2 + 10, y2: y }));
    g.append(svg('polygon', { points: tip }));
    const label = `${m.message_type}${m.token_prefix ? ` (token ${m.token_prefix}…)` : ''}${m.dropped ? ` — dropped: ${m.dropped}` : ''}`;
    g.append(svg('text', { x: (left + right) / 2, y: y - 6, 'text-anchor': 'middle' }, label));
    g.addEventListener('click', () => {
      selectedMessage = { session: session.session, index: i };
      document.getElementById('message-json').textContent = JSON.stringify(m, null, 2);
    });
    d.append(g);
  });
  const who = session.device ? `device ${session.device.slice(0, 16)}…` : 'unknown device';
  return el('div', { class: 'session' }, el('p', {}, `session ${session.session.slice(0, 8)}… of ${who}, started ${when(session.started)}`), d);
}

async function tcsPage() {
  const tcs = await api('GET', '/admin/tcs');
  return { key: JSON.stringify(tcs), draw: () => drawTcs(tcs) };
}

async function upload(file) {
  try {
    const v = await api('POST', '/admin/tcs', await file.arrayBuffer(), 'application/suit-envelope+cose');
    status(`uploaded ${v.manifest_id} sequence ${v.sequence} signed by ${v.signer_name || v.signer}`);
  } catch (e) {
    status(`upload refused: ${e.message}`, true);
  }
  refresh(true);
}

function drawTcs(tcs) {
  const drop = el('div', { id: 'drop' }, 'Drop a signed SUIT envelope here, or choose one: ', el('input', { type: 'file', id: 'tc-file' }));
  drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', e => { e.preventDefault(); drop.classList.remove('over'); for (const f of e.dataTransfer.files) upload(f); });
  drop.querySelector('input').addEventListener('change', e => { for (const f of e.target.files) upload(f); });
  const rows = tcs.map(tc => el('tr', { 'data-tc': tc.manifest_id },
    el('td', { class: 'mono' }, tc.manifest_id),
    el('td', {}, ...tc.versions.map(v => el('div', {}, `#${v.sequence} signed by ${v.signer_name || (v.signer ? v.signer.slice(0, 16) + '…' : 'unknown')}`))),
    el('td', { class: 'tc-state' }, tc.revoked ? 'revoked' : 'active'),
    el('td', {}, tc.revoked ? '' : el('button', {
      type: 'button', class: 'revoke',
      onclick: async () => {
        if (!window.confirm(`Revoke every version of ${tc.manifest_id}?`)) return;
        try { await api('POST', '/admin/tcs/revoke', { manifest_id: tc.manifest_id }); status(`revoked ${tc.manifest_id}`); } catch (e) { status(e.message, true); }
        refresh(true);
      },
    }, 'Revoke'))));
  return [el('h2', {}, 'Trusted Components'), drop,
    el('table', { id: 'tcs' }, el('tr', {}, ...['Manifest', 'Versions', 'State', ''].map(h => el('th', {}, h))), ...rows)];
}

async function policyPage() {
  const [policy, tcs] = await Promise.all([api('GET', '/admin/policy'), api('GET', '/admin/tcs')]);
  return { key: JSON.stringify([policy, tcs]), draw: () => drawPolicy(policy, tcs), keepWhileEditing: true };
}

function drawPolicy(policy, tcs) {
  const list = (ids) => ids.join(', ');
  const split = (text) => text.split(',').map(s => s.trim()).filter(s => s.length);
  const row = (kind, name, p) => {
    const install = el('input', { class: 'install wide', value: list(p.install) });
    const requestable = el('input', { class: 'requestable wide', value: list(p.requestable) });
    const path = kind === 'class' ? `/admin/policy/class/${encodeURIComponent(name)}` : `/admin/policy/device/${encodeURIComponent(name)}`;
    const save = el('button', {
      type: 'button', class: 'save',
      onclick: async () => {
        try {
          await api('PUT', path, { install: split(install.value), requestable: split(requestable.value) });
          status(`policy of ${kind} ${name} saved`);
        } catch (e) { status(`policy refused: ${e.message}`, true); }
        refresh(true);
      },
    }, 'Save');
    return el('tr', { 'data-scope': `${kind}:${name}` }, el('td', {}, kind), el('td', { class: 'mono' }, name), el('td', {}, install), el('td', {}, requestable), el('td', {}, save));
  };
  const rows = [
    ...Object.entries(policy.classes).map(([c, p]) => row('class', c, p)),
    ...Object.entries(policy.devices).map(([d, p]) => row('device', d, p)),
  ];
  const newClass = el('input', { id: 'new-class', placeholder: 'device class' });
  const add = el('button', { type: 'button', id: 'add-class', onclick: () => {
    if (!newClass.value) return;
    document.getElementById('policies').append(row('class', newClass.value, { install: [], requestable: [] }));
  } }, 'Add a class policy');
  return [el('h2', {}, 'Policy'),
    el('p', {}, 'TCs to install and TCs a device may request, as manifest IDs separated by commas. Uploaded: ', tcs.map(t => t.manifest_id).join(', ') || 'none'),
    el('table', { id: 'policies' }, el('tr', {}, ...['Scope', 'Name', 'Install', 'Requestable', ''].map(h => el('th', {}, h))), ...rows),
    el('p', {}, newClass, ' ', add)];
}

async function auditPage() {
  const lines = await api('GET', '/admin/audit?limit=1000');
  return { key: JSON.stringify(lines), draw: () => drawAudit(lines) };
}

function drawAudit(lines) {
  const rows = [...lines].reverse().map(a => el('tr', {}, el('td', {}, when(a.at)), el('td', { class: 'mono' }, a.device ? a.device.slice(0, 16) + '…' : '—'),
    el('td', {}, a.event), el('td', {}, a.detail || '')));
  return [el('h2', {}, 'Audit log'), el('p', {}, 'Newest first.'),
    el('table', { id: 'audit' }, el('tr', {}, ...['When', 'Device', 'Event', 'Detail'].map(h => el('th', {}, h))), ...rows)];
}

// ---- routing and live updates -----------------------------------------------------

function route() {
  const [, page, arg] = location.hash.split('/');
  switch (page) {
    case 'device': return ['fleet', () => devicePage(decodeURIComponent(arg || ''))];
    case 'tcs': return ['tcs', tcsPage];
    case 'policy': return ['policy', policyPage];
    case 'audit': return ['audit', auditPage];
    default: return ['fleet', fleetPage];
  }
}

let refreshing = false;
async function refresh(force) {
  if (!token() || refreshing) return;
  const main = document.getElementById('main');
  const [nav, load] = route();
  refreshing = true;
  try {
    const page = await load();
    // Do not redraw under an operator's cursor, nor when nothing changed.
    const editing = page.keepWhileEditing && main.contains(document.activeElement) && document.activeElement.tagName === 'INPUT';
    if ((force || page.key !== lastRendered) && !(editing && !force)) {
      lastRendered = page.key;
      main.replaceChildren(...page.draw());
    }
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.id === `nav-${nav}`);
    document.getElementById('status').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    if (e.status !== 401) document.getElementById('status').textContent = `could not load: ${e.message}`;
  } finally {
    refreshing = false;
  }
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('signin').addEventListener('click', signIn);
  document.getElementById('token').addEventListener('keydown', e => { if (e.key === 'Enter') signIn(); });
  document.getElementById('signout').addEventListener('click', signOut);
  window.addEventListener('hashchange', () => { selectedMessage = null; refresh(true); });
  if (token()) showApp();
  setInterval(() => refresh(false), POLL_MS);
});
