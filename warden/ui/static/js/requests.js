// The request table: filters (kept in the URL), newest first, a page at a time (cursor).

import {getJSON, markReady, query, showError, clearError} from './api.js';
import {$, badge, byTestId, debounce, empty, fill, h} from './dom.js';
import * as fmt from './format.js';

const FILTERS = ['model', 'deployment', 'key', 'user', 'session', 'status', 'tag', 'q', 'range'];
const DEFAULT_RANGE = '24h';
const PAGE = 50;
const form = document.getElementById('filters');
const rows = document.getElementById('rows');
const emptySlot = document.getElementById('empty-slot');
const next = byTestId('next-page');
const newest = document.getElementById('newest');
const note = document.getElementById('page-note');

let applied = null; // the filters of the rows shown
let cursors = []; // the cursor of each page before this one; the current page is cursors.at(-1)
let nextCursor = null;
let loading = 0;

function input(name) {
  return byTestId(`filter-${name}`);
}

function current() {
  const out = {};
  for (const name of FILTERS) out[name] = input(name).value.trim();
  if (!fmt.RANGE_SECONDS[out.range]) out.range = DEFAULT_RANGE;
  return out;
}

function fromUrl() {
  const params = new URLSearchParams(location.search);
  for (const name of FILTERS) {
    const value = params.get(name);
    if (value !== null) input(name).value = value;
  }
  if (!fmt.RANGE_SECONDS[input('range').value]) input('range').value = DEFAULT_RANGE;
}

function toUrl(filters) {
  const shown = {...filters};
  if (shown.range === DEFAULT_RANGE) delete shown.range;
  history.replaceState(null, '', location.pathname + query(shown));
}

function statusBadge(r) {
  const kind = r.status === 'ok' ? 'ok' : r.status;
  return badge(r.status === 'ok' ? `${r.http_status}` : `${r.status} ${r.http_status}`, kind);
}

function row(r) {
  const href = `/ui/requests/${encodeURIComponent(r.request_id)}`;
  return h('tr', {class: 'clickable', testid: 'request-row', dataset: {requestId: r.request_id},
    onclick: (event) => {
      if (!event.target.closest('a')) location.assign(href);
    }},
  h('td', {}, h('a', {href, title: r.request_id}, fmt.time(r.started_at))),
  h('td', {}, r.model),
  h('td', {}, r.deployment ?? '–'),
  h('td', {}, r.key_id ?? '–'),
  h('td', {}, r.end_user ?? '–'),
  h('td', {}, r.session_id ?? '–'),
  h('td', {}, statusBadge(r)),
  h('td', {class: 'num'}, fmt.duration(r.latency_s)),
  h('td', {class: 'num'}, `${fmt.count(r.input_tokens)} / ${fmt.count(r.output_tokens)}`),
  h('td', {class: 'num'}, r.cost_usd === null ? '–' : fmt.usd(r.cost_usd)));
}

function emptyText(filters) {
  if (filters.q && nextCursor) {
    return 'No match among the newest records searched — Next page searches further back.';
  }
  const narrowed = FILTERS.some((n) => n !== 'range' && filters[n]);
  if (narrowed) return 'No requests match these filters in this range — clear a filter or pick a longer range.';
  return 'No requests in this range — send one to /v1/chat/completions or pick a longer range.';
}

async function load(filters, cursor) {
  const mine = ++loading;
  const params = {
    model: filters.model, deployment: filters.deployment, key: filters.key, user: filters.user,
    session: filters.session, status: filters.status, tag: filters.tag, q: filters.q,
    range: filters.range, limit: PAGE, cursor,
  };
  let page;
  try {
    page = await getJSON(`/api/requests${query(params)}`);
  } catch (err) {
    if (mine !== loading) return;
    showError(err);
    rows.replaceChildren();
    fill(emptySlot);
    markReady();
    return;
  }
  if (mine !== loading) return; // a newer load has started
  clearError();
  applied = filters;
  nextCursor = page.next_cursor;
  rows.replaceChildren(...page.data.map(row));
  fill(emptySlot, page.data.length ? null : empty(emptyText(filters)));
  next.disabled = !nextCursor;
  newest.disabled = cursors.length <= 1;
  note.textContent = page.data.length
    ? `Page ${cursors.length}: ${page.data.length} request${page.data.length === 1 ? '' : 's'}`
      + (filters.q && nextCursor && page.data.length < PAGE ? ' (a text search reads a bounded number of records per page)' : '')
    : '';
  markReady();
}

function apply() {
  const filters = current();
  if (applied && FILTERS.every((n) => filters[n] === applied[n])) return;
  if (filters.tag && !/^[^:]+:/.test(filters.tag)) {
    showError(new Error('A tag filter is key:value, e.g. feature:search.'));
    return;
  }
  toUrl(filters);
  cursors = [null];
  load(filters, null);
}

const typed = debounce(apply, 500);
form.addEventListener('submit', (event) => {
  event.preventDefault();
  apply();
});
form.addEventListener('change', apply);
form.addEventListener('input', (event) => {
  if (event.target.tagName === 'INPUT') typed();
});
form.addEventListener('keydown', (event) => {
  if (event.key === 'Enter') {
    event.preventDefault();
    apply();
  }
});
next.addEventListener('click', () => {
  if (!nextCursor || !applied) return;
  cursors.push(nextCursor);
  load(applied, nextCursor);
  window.scrollTo({top: 0});
});
newest.addEventListener('click', () => {
  if (!applied) return;
  cursors = [null];
  load(applied, null);
});

async function suggestions() {
  // The names the filters may take, from the running config (best effort).
  try {
    const deployments = await getJSON('/api/deployments');
    const models = [...new Set(deployments.data.map((d) => d.model))].sort();
    const ids = [...new Set(deployments.data.map((d) => d.id))].sort();
    fill($('#known-models'), models.map((m) => h('option', {value: m})));
    fill($('#known-deployments'), ids.map((d) => h('option', {value: d})));
  } catch {
    // suggestions only: the table works without them
  }
}

fromUrl();
cursors = [null];
load(current(), null);
suggestions();
