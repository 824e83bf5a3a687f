// Guardrails: findings over time by scanner and action, totals by kind, and the newest
// blocked and redacted requests.

import {getJSON, query, start} from './api.js';
import {badge, byTestId, empty, fill, h, table} from './dom.js';
import * as fmt from './format.js';
import {timeChart} from './chart.js';

const picker = byTestId('range');
const fromUrl = new URLSearchParams(location.search).get('range');
picker.value = fmt.RANGE_SECONDS[fromUrl] ? fromUrl : '24h';
const chartEl = byTestId('guard-chart');
let chart = null;

function drawChart(counts) {
  const series = [...new Set(counts.data.map((c) => `${c.scanner} · ${c.action}`))].sort();
  if (!series.length) {
    chart?.destroy();
    chart = null;
    fill(chartEl, empty('No guard findings in this range — guard policies (guard.policies in '
      + 'warden.yaml) record what their scanners find; pick a longer range to see older ones.'));
    return;
  }
  const step = counts.bucket_s;
  const first = Math.floor(counts.since / step) * step;
  const t = [];
  for (let at = first; at < counts.until; at += step) t.push(at);
  const index = new Map(t.map((at, i) => [at, i]));
  const ys = series.map(() => t.map(() => 0));
  for (const c of counts.data) {
    const i = index.get(c.bucket_start);
    if (i !== undefined) ys[series.indexOf(`${c.scanner} · ${c.action}`)][i] += c.count;
  }
  if (!chart || chart.step !== step) {
    chart?.destroy();
    chartEl.replaceChildren();
    chart = timeChart(chartEl, {yLabel: `findings per ${fmt.interval(step)}`, format: (v) => fmt.sig(v)});
    chart.step = step;
  }
  chart.update(series.map((label) => ({label})), [t, ...ys]);
}

function byKind(counts) {
  const totals = new Map();
  for (const c of counts.data) {
    const key = `${c.scanner}\u0000${c.type}\u0000${c.action}\u0000${c.where}`;
    totals.set(key, (totals.get(key) || 0) + c.count);
  }
  const rows = [...totals].map(([key, n]) => {
    const [scanner, type, action, where] = key.split('\u0000');
    return {scanner, type, action, where, n};
  }).sort((a, b) => b.n - a.n);
  fill(document.getElementById('by-kind'), rows.length ? table([
    {label: 'Scanner', cell: (r) => r.scanner}, {label: 'Type', cell: (r) => r.type},
    {label: 'Action', cell: (r) => badge(r.action, r.action === 'block' ? 'bad' : 'warn')},
    {label: 'In', cell: (r) => r.where}, {label: 'Findings', num: true, cell: (r) => fmt.count(r.n)},
  ], rows) : empty('Nothing found in this range.'));
}

function requests(el, found, actions, none) {
  if (!found.data.length) {
    fill(el, empty(none));
    return;
  }
  fill(el, table([
    {label: 'Time', cell: (r) => h('a', {href: `/ui/requests/${encodeURIComponent(r.request_id)}`}, fmt.time(r.started_at))},
    {label: 'Model', cell: (r) => r.model},
    {label: 'Key', cell: (r) => r.key_id ?? '–'},
    {label: 'Found', wrap: true, cell: (r) => [...new Set(r.findings.filter((f) => actions.includes(f.action))
      .map((f) => `${f.scanner}: ${f.type}`))].join(', ')},
  ], found.data, (r) => ({dataset: {requestId: r.request_id}})));
}

async function load() {
  const range = picker.value;
  const [counts, blocked, redacted] = await Promise.all([
    getJSON(`/api/findings${query({range})}`),
    getJSON(`/api/findings/requests${query({range, action: 'block', limit: 15})}`),
    getJSON(`/api/findings/requests${query({range, action: ['redact', 'pseudonymize'], limit: 15})}`),
  ]);
  drawChart(counts);
  byKind(counts);
  requests(byTestId('top-blocked'), blocked, ['block'],
    'No request was blocked in this range — a policy rule with action: block refuses what its scanner finds.');
  requests(byTestId('top-redacted'), redacted, ['redact', 'pseudonymize'],
    'No request was redacted in this range — rules with action: redact or pseudonymize hide what their scanners find.');
}

picker.addEventListener('change', () => {
  const range = picker.value;
  history.replaceState(null, '', range === '24h' ? location.pathname : `${location.pathname}?range=${range}`);
  start(load);
});

start(load);
