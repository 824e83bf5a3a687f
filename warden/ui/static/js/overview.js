// The overview: tiles, charts and breakdowns of the chosen range, live from /api/live.

import {clearError, markReady, showError} from './api.js';
import {timeChart} from './chart.js';
import {byTestId, empty, fill, h, named, table} from './dom.js';
import * as fmt from './format.js';
import {follow} from './live.js';

const picker = byTestId('range');
const liveDot = document.getElementById('live');
const fromUrl = new URLSearchParams(location.search).get('range');
let range = fmt.RANGE_SECONDS[fromUrl] ? fromUrl : '1h';
picker.value = range;
let stop = null;
let charts = null;

function tile(id, value, sub) {
  const el = byTestId(id);
  el.querySelector('[data-testid="value"]').textContent = value;
  el.querySelector('.sub').textContent = sub;
}

function tiles(t) {
  tile('tile-rps', fmt.rate(t.requests_per_s), `${fmt.count(t.requests)} requests`);
  tile('tile-p50', fmt.duration(t.latency_p50), 'half answer faster');
  tile('tile-p95', fmt.duration(t.latency_p95), '95 % answer faster');
  tile('tile-p99', fmt.duration(t.latency_p99), '99 % answer faster');
  tile('tile-ttft', fmt.duration(t.ttft_p50),
    t.ttft_p95 === null ? 'no streamed answers' : `p50; p95 ${fmt.duration(t.ttft_p95)}`);
  tile('tile-tps', fmt.tokensRate(t.output_tokens_per_s), `${fmt.count(t.output_tokens)} tokens out`);
  tile('tile-errors', fmt.percent(t.error_rate), `${fmt.count(t.errors)} errors`);
  tile('tile-availability', fmt.percent(t.availability), 'answered without a 5xx');
  tile('tile-cost', fmt.usd(t.cost_usd ?? 0),
    t.unknown_cost ? `${fmt.count(t.unknown_cost)} without a known price` : 'known prices only');
  tile('tile-cache', fmt.percent(t.cache_hit_rate), `${fmt.count(t.cache_hits)} cache hits`);
  tile('tile-guard', fmt.count(t.guard_actions), `${fmt.count(t.blocked)} requests blocked`);
  tile('tile-inflight', fmt.count(t.in_flight), 'being answered now');
}

function makeCharts(bucket) {
  if (charts) for (const name of ['rps', 'latency', 'errors']) charts[name].destroy();
  return {
    bucket,
    rps: timeChart(document.getElementById('chart-rps'), {yLabel: 'requests / s', format: (v) => fmt.sig(v)}),
    latency: timeChart(document.getElementById('chart-latency'), {yLabel: 'latency (ms)',
      format: (v) => fmt.sig(v * 1000)}),
    errors: timeChart(document.getElementById('chart-errors'), {yLabel: `errors per ${fmt.interval(bucket)}`,
      bars: true, format: (v) => fmt.sig(v)}),
  };
}

function drawCharts(s) {
  if (!charts || charts.bucket !== s.bucket_s) charts = makeCharts(s.bucket_s);
  const c = s.series;
  charts.rps.update([{label: 'requests/s'}], [c.t, c.requests_per_s]);
  charts.latency.update([{label: 'p50'}, {label: 'p95'}, {label: 'p99'}],
    [c.t, c.latency_p50, c.latency_p95, c.latency_p99]);
  charts.errors.update([{label: 'errors', color: '#dc2626'}], [c.t, c.errors.map((n) => n || null)]);
}

const NO_REQUESTS = 'No requests in this range — send one to /v1/chat/completions or pick a longer range.';

function breakdown(name, rows, total) {
  const el = byTestId(`breakdown-${name}`);
  if (!rows.length) {
    fill(el, empty(NO_REQUESTS));
    return;
  }
  const label = {model: 'Model', deployment: 'Deployment', key: 'Key'}[name];
  const shown = rows.slice(0, 10);
  const none = {model: '(none)', deployment: '(not routed)', key: '(no key)'}[name];
  fill(el, table([
    {label, name: true, cell: (r) => named(r.group ?? none, r.requests / total)},
    {label: 'Req/s', num: true, cell: (r) => fmt.sig(r.requests_per_s)},
    {label: 'Errors', num: true, cell: (r) => fmt.percent(r.error_rate)},
    {label: 'Latency', num: true, cell: (r) => fmt.duration(r.latency_mean)},
    {label: 'Cost', num: true, cell: (r) => fmt.usd(r.cost_usd)},
  ], shown, () => ({}), 'compact'), rows.length > shown.length
    ? h('div', {class: 'more'}, `and ${rows.length - shown.length} more`) : null);
}

function render(snapshot) {
  clearError();
  liveDot.classList.add('on');
  tiles(snapshot.tiles);
  drawCharts(snapshot);
  for (const name of ['model', 'deployment', 'key']) {
    breakdown(name, snapshot.breakdowns[name], snapshot.tiles.requests || 1);
  }
  markReady();
}

function problem(err) {
  liveDot.classList.remove('on');
  showError(err);
  markReady();
}

function watch() {
  if (stop) stop();
  stop = follow(`/api/live?range=${encodeURIComponent(range)}`, {
    onEvent: (name, data) => (name === 'overview' ? render(data) : problem(data.error)),
    onProblem: problem,
  });
}

picker.addEventListener('change', () => {
  range = picker.value;
  const url = range === '1h' ? location.pathname : `${location.pathname}?range=${range}`;
  history.replaceState(null, '', url);
  watch();
});

watch();
