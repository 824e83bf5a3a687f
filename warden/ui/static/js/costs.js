// Costs: spend by key, team, model and day over the range, and the budgets of this period.

import {getJSON, query, start} from './api.js';
import {byTestId, empty, fill, h, named, share, table} from './dom.js';
import * as fmt from './format.js';
import {timeChart} from './chart.js';

const picker = byTestId('range');
const fromUrl = new URLSearchParams(location.search).get('range');
picker.value = fmt.RANGE_SECONDS[fromUrl] ? fromUrl : '30d';
let chart = null;
let chartBucket = null;

function spend(el, rows, label, none) {
  const total = rows.reduce((sum, r) => sum + (r.cost_usd || 0), 0);
  if (!rows.length) {
    fill(el, empty(none));
    return;
  }
  const sorted = [...rows].sort((a, b) => (b.cost_usd || 0) - (a.cost_usd || 0));
  fill(el, table([
    {label, name: true, cell: (r) => named(r.group ?? '(none)', total ? (r.cost_usd || 0) / total : 0)},
    {label: 'Spend', num: true, cell: (r) => fmt.usd(r.cost_usd)},
    {label: 'Requests', num: true, cell: (r) => fmt.count(r.count)},
    {label: 'Tokens', num: true, cell: (r) => h('span', {title: `${fmt.count(r.input_tokens)} in, `
      + `${fmt.count(r.output_tokens)} out`}, fmt.count(r.input_tokens + r.output_tokens))},
  ], sorted, (r) => ({title: r.unknown_cost ? `${r.unknown_cost} requests without a known price` : null}),
  'compact'));
}

function byDay(stats, since, until, bucket) {
  const el = byTestId('cost-by-day');
  document.getElementById('by-day-title').textContent = bucket === 86400
    ? 'Spend per day (UTC)' : 'Spend per hour';
  const first = Math.floor(since / bucket) * bucket;
  const t = [];
  for (let at = first; at < until; at += bucket) t.push(at);
  const cost = new Map();
  for (const row of stats.data) cost.set(row.bucket_start, (cost.get(row.bucket_start) || 0) + (row.cost_usd || 0));
  if (!chart || chartBucket !== bucket) {
    chart?.destroy();
    el.replaceChildren();
    chartBucket = bucket;
    chart = timeChart(el, {yLabel: bucket === 86400 ? 'USD per day' : 'USD per hour', bars: true,
      format: (v) => fmt.usd(v)});
  }
  chart.update([{label: 'spend', color: '#059669'}], [t, t.map((at) => cost.get(at) || null)]);
}

function budgets(found) {
  const el = document.getElementById('budgets');
  if (!found.data.length) {
    fill(el, empty('No budgets are configured — add budgets: to warden.yaml to cap the spend of a '
      + 'key or a team per day, week or month.'));
    return;
  }
  fill(el, table([
    {label: 'Budget', cell: (b) => `${b.scope} ${b.match} (${b.budget})`},
    {label: 'Who', cell: (b) => b.subject ?? 'no spend yet'},
    {label: 'Period (UTC)', cell: (b) => `${b.period}: ${fmt.day(b.period_start)} to ${fmt.day(b.period_end - 1)}`},
    {label: 'Used', num: true, cell: (b) => fmt.usd(b.used_usd)},
    {label: 'Limit', num: true, cell: (b) => fmt.usd(b.usd)},
    {label: 'Used %', num: true, cell: (b) => [fmt.percent(b.used_share), share(b.used_share)]},
  ], found.data, () => ({testid: 'budget-row'})));
}

async function load() {
  const range = picker.value;
  const until = Date.now() / 1000;
  const since = until - fmt.RANGE_SECONDS[range];
  const bucket = fmt.RANGE_SECONDS[range] > 86400 ? 86400 : 3600;
  const summary = (group) => getJSON(`/api/summary${query({range, group_by: group, percentiles: 'false'})}`);
  const [total, keys, teams, models, stats, found] = await Promise.all([
    getJSON(`/api/summary${query({range, percentiles: 'false'})}`),
    summary('key_id'), summary('team'), summary('model'),
    getJSON(`/api/stats${query({bucket, since: Math.floor(since / bucket) * bucket, until})}`),
    getJSON('/api/budgets'),
  ]);
  const t = total.data[0];
  fill(document.getElementById('cost-tiles'), [
    ['Spend', fmt.usd(t?.cost_usd ?? 0), `${fmt.count(t?.count ?? 0)} requests`],
    ['Tokens in', fmt.count(t?.input_tokens ?? 0), 'prompt tokens'],
    ['Tokens out', fmt.count(t?.output_tokens ?? 0), 'completion tokens'],
    ['Unpriced requests', fmt.count(t?.unknown_cost ?? 0), 'no known price: set price: on the deployment'],
  ].map(([label, value, sub]) => h('div', {class: 'tile'}, h('div', {class: 'label'}, label),
    h('div', {class: 'value'}, value), h('div', {class: 'sub'}, sub))));
  const none = 'No requests in this range — pick a longer range.';
  spend(byTestId('cost-by-key'), keys.data, 'Key', none);
  spend(byTestId('cost-by-team'), teams.data, 'Team', none);
  spend(byTestId('cost-by-model'), models.data, 'Model', none);
  byDay(stats, since, until, bucket);
  budgets(found);
}

picker.addEventListener('change', () => {
  const range = picker.value;
  history.replaceState(null, '', range === '30d' ? location.pathname : `${location.pathname}?range=${range}`);
  start(load);
});

start(load);
