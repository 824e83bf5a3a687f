// Models and deployments: live health and breaker state, latency and error rate over the
// range, and the running config.

import {getJSON, query, start} from './api.js';
import {badge, byTestId, empty, fill, h} from './dom.js';
import * as fmt from './format.js';

const picker = byTestId('range');
const fromUrl = new URLSearchParams(location.search).get('range');
picker.value = fmt.RANGE_SECONDS[fromUrl] ? fromUrl : '1h';
const BREAKER = {closed: 'ok', half_open: 'warn', open: 'bad'};

async function load() {
  const range = picker.value;
  const [deployments, config] = await Promise.all([getJSON('/api/deployments'), getJSON('/api/config')]);
  const models = [...new Set(deployments.data.map((d) => d.model))];
  const summaries = await Promise.all(models.map((model) => getJSON(
    `/api/summary${query({range, model, group_by: 'deployment'})}`)));
  const stats = new Map();
  models.forEach((model, i) => {
    for (const row of summaries[i].data) stats.set(`${model}\u0000${row.group}`, row);
  });
  const body = document.getElementById('deployments');
  if (!deployments.data.length) {
    fill(body, h('tr', {}, h('td', {colspan: 11}, empty('No deployments: add models: to warden.yaml, then reload.'))));
  } else {
    fill(body, deployments.data.map((d) => {
      const s = stats.get(`${d.model}\u0000${d.id}`);
      return h('tr', {testid: 'deployment-row', dataset: {model: d.model, deployment: d.id}},
        h('td', {}, d.model),
        h('td', {}, h('strong', {}, d.id), d.upstream_model ? h('div', {class: 'muted'}, d.upstream_model) : null),
        h('td', {}, d.provider),
        h('td', {}, d.healthy ? badge('healthy', 'ok') : badge('unhealthy', 'bad')),
        h('td', {}, badge(d.breaker.replace('_', '-'), BREAKER[d.breaker] || ''),
          d.breaker_opened ? h('div', {class: 'muted'}, `opened ${d.breaker_opened}×`) : null),
        h('td', {class: 'num'}, fmt.count(d.in_flight)),
        h('td', {class: 'num'}, s ? fmt.count(s.count) : '0'),
        h('td', {class: 'num'}, s ? fmt.duration(s.latency_p50) : '–'),
        h('td', {class: 'num'}, s ? fmt.duration(s.latency_p95) : '–'),
        h('td', {class: 'num'}, s ? fmt.percent(s.error_rate) : '–'),
        h('td', {class: 'wrap muted'}, d.last_error || ''));
    }));
  }
  fill(byTestId('config'), JSON.stringify(config, null, 2));
}

picker.addEventListener('change', () => {
  const range = picker.value;
  history.replaceState(null, '', range === '1h' ? location.pathname : `${location.pathname}?range=${range}`);
  start(load);
});

start(load);
