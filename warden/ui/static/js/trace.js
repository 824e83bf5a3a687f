// One request's trace: what was asked (with the guard's findings marked), what came back, how
// it was routed (every upstream attempt on a timeline), its timings, tokens, cost, feedback,
// and its neighbours in its session.

import {getJSON, postJSON, query, start} from './api.js';
import {badge, empty, fill, h} from './dom.js';
import * as fmt from './format.js';

const rid = document.body.dataset.requestId;
const slot = document.getElementById('trace-slot');
const OPERATOR_ROLES = ['system', 'developer'];

function section(title, testid, ...body) {
  return h('section', {class: 'card'}, h('h2', {}, title), h('div', {testid}, ...body));
}

function fact(label, value, testid = null) {
  return h('div', {class: 'fact'}, h('div', {class: 'k'}, label), h('div', {class: 'v', testid}, value));
}

// -- the prompt, with the input findings marked -------------------------------------------

/** Text with [start, end) spans (in code points, as Python counts) marked. */
function markedAt(text, spans) {
  const chars = Array.from(text);
  const out = [];
  let at = 0;
  for (const s of [...spans].sort((a, b) => a.start - b.start)) {
    if (s.start < at || s.end > chars.length || s.end <= s.start) continue; // overlapping or stale
    out.push(chars.slice(at, s.start).join(''));
    out.push(h('mark', {testid: 'finding-span', title: `${s.scanner}: ${s.type} (${s.action})`},
      chars.slice(s.start, s.end).join('')));
    at = s.end;
  }
  out.push(chars.slice(at).join(''));
  return h('pre', {class: 'text'}, out);
}

/** A redaction's or a pseudonym's placeholder: [EMAIL_ADDRESS], <PERSON_1>. */
const PLACEHOLDER = /\[([A-Z][A-Z0-9_]*)\]|<([A-Z][A-Z0-9_]*?)_\d+>/gu;

/** Text with the placeholders of the given finding types marked (in code points). */
function placeholders(text, findings) {
  const types = new Map(findings.map((f) => [f.type, f]));
  const chars = Array.from(text);
  const spans = [];
  for (const m of text.matchAll(PLACEHOLDER)) {
    const f = types.get(m[1] ?? m[2]);
    if (!f) continue;
    const start = Array.from(text.slice(0, m.index)).length;
    spans.push({...f, start, end: start + Array.from(m[0]).length});
  }
  return markedAt(chars.join(''), spans);
}

/** The scanned parts of a stored prompt, in the guard's order (warden/guard/parts.py). */
function messages(prompt, findings) {
  // A prompt the guard rewrote is stored rewritten: its findings' places are the placeholders
  // (the offsets point into the text the client sent, which is not kept).
  const rewrites = findings.filter((f) => f.where === 'input'
    && (f.action === 'redact' || f.action === 'pseudonymize'));
  const offsets = (part) => findings.filter((f) => f.where === 'input' && f.part === part
    && f.start !== null && f.end !== null);
  const spans = rewrites.length ? () => [] : offsets;
  const marked = rewrites.length ? (text) => placeholders(text, rewrites) : markedAt;
  let value;
  try {
    value = JSON.parse(prompt);
  } catch {
    return [marked(prompt, spans(0))];
  }
  let part = 0;
  // A finding without a span is about its whole text: named above that text.
  const whole = (n) => findings.filter((f) => f.where === 'input' && f.part === n && f.start === null)
    .map((f) => h('div', {class: 'whole-finding'}, badge(f.action, f.action === 'block' ? 'bad' : 'warn'),
      ` ${f.scanner}: ${f.type} (whole text)`));
  const box = (role, ...content) => h('div', {class: 'message'}, h('div', {class: 'role'}, role), ...content);
  if (typeof value === 'string') return [box('prompt', whole(0), marked(value, spans(0)))];
  if (!Array.isArray(value)) return [box('input', h('pre', {class: 'text'}, JSON.stringify(value, null, 2)))];
  return value.map((item, i) => {
    if (typeof item === 'string') return box(`input ${i + 1}`, marked(item, spans(part++)));
    if (!item || typeof item !== 'object') return box(`input ${i + 1}`, h('pre', {class: 'text'}, JSON.stringify(item)));
    const role = item.role || 'message';
    const scanned = !OPERATOR_ROLES.includes(role);
    const content = item.content;
    if (typeof content === 'string') {
      if (!scanned) return box(role, h('pre', {class: 'text'}, content));
      const n = part++;
      return box(role, whole(n), marked(content, spans(n)));
    }
    if (Array.isArray(content)) {
      return box(role, content.map((piece) => (piece && typeof piece.text === 'string'
        ? (scanned ? marked(piece.text, spans(part++)) : h('pre', {class: 'text'}, piece.text))
        : h('pre', {class: 'text'}, JSON.stringify(piece)))));
    }
    return box(role, h('pre', {class: 'text'}, JSON.stringify(item, null, 2)));
  });
}

function inputSection(r, payload) {
  let body;
  if (!payload || payload.prompt === null) {
    body = empty('The prompt was not kept: the payload policy of this request is "none" '
      + '(store.payloads, or the key\'s payloads).');
  } else {
    const findings = payload.policy === 'full' ? r.findings : []; // redacted text: spans moved
    body = [h('p', {class: 'muted'}, `Stored ${payload.policy === 'full' ? 'as the provider got it' : 'redacted'} `
      + `(payload policy ${payload.policy}).`), h('div', {class: 'messages'}, messages(payload.prompt, findings))];
  }
  return section('Input', 'trace-input', body);
}

function outputSection(r, payload) {
  const parts = [];
  if (r.error_message) parts.push(h('p', {class: 'page-error'}, `${r.error_type || 'error'}: ${r.error_message}`));
  if (payload && payload.completion !== null) parts.push(h('pre', {class: 'text'}, payload.completion));
  else if (!r.error_message) parts.push(empty(payload ? 'No answer text (an embedding, or none came back).'
    : 'The answer was not kept (payload policy "none").'));
  return section('Output', 'trace-output', parts);
}

// -- routing and attempts -------------------------------------------------------------------

function attempts(r) {
  const total = Math.max(r.latency_s, ...r.attempts.map((a) => a.started_s + a.latency_s), 1e-6);
  const pct = (s) => `${Math.max(0, Math.min(100, (s / total) * 100))}%`;
  const lanes = r.attempts.map((a, i) => {
    const failed = a.error_type !== null || a.status >= 400 || a.status === 0;
    const label = `#${i + 1} ${a.deployment} · ${a.status || 'no answer'} · ${fmt.duration(a.latency_s)}`;
    return h('div', {class: 'lane'}, h('div', {
      class: `bar${failed ? ' failed' : ''}`, testid: 'attempt',
      title: `${a.model} / ${a.deployment} (${a.provider}): started at +${fmt.duration(a.started_s)}, `
        + `took ${fmt.duration(a.latency_s)}${a.error ? `; ${a.error}` : ''}`,
      style: {left: pct(a.started_s), width: pct(a.latency_s)},
    }, label));
  });
  const ttft = r.ttft_s !== null ? h('div', {class: 'ttft', title: `first token at ${fmt.duration(r.ttft_s)}`,
    style: {left: pct(r.ttft_s)}}) : null;
  const route = r.deployment
    ? `Answered by ${r.deployment} (${r.provider}, model ${r.upstream_model}) after `
      + `${r.attempts.length} attempt${r.attempts.length === 1 ? '' : 's'}.`
    : (r.attempts.length ? `No deployment answered: ${r.attempts.length} attempts failed.`
      : 'No upstream was called (refused before routing).');
  const models = [...new Set(r.attempts.map((a) => a.model))];
  return section('Routing and attempts', 'trace-attempts',
    h('p', {}, route, models.length > 1 ? ` Fell back through ${models.join(' → ')}.` : ''),
    r.attempts.length ? [h('div', {class: 'timeline'}, lanes, ttft),
      h('div', {class: 'axis'}, h('span', {}, '0'), h('span', {}, fmt.duration(total)))]
      : empty('No upstream attempts.'));
}

// -- findings, feedback, session ----------------------------------------------------------------

function findingsSection(r) {
  if (!r.findings.length) return section('Guard findings', 'trace-findings', empty('The guard found nothing in this request.'));
  return section('Guard findings', 'trace-findings', h('ul', {class: 'plain'}, r.findings.map((f) => h('li', {},
    badge(f.action, f.action === 'block' ? 'bad' : f.action === 'flag' ? '' : 'warn'), ' ',
    h('strong', {}, `${f.scanner}: ${f.type}`), ` in the ${f.where}`,
    f.start !== null ? ` at characters ${f.start}–${f.end}` : '', f.part !== null ? ` of part ${f.part + 1}` : '',
    h('span', {class: 'muted'}, ` · score ${fmt.sig(f.score)}`)))));
}

function feedbackSection(notes) {
  const list = notes.length
    ? h('ul', {class: 'plain'}, notes.map((n) => h('li', {},
      n.score !== null ? h('strong', {}, `score ${fmt.sig(n.score)} `) : '', n.label ? badge(n.label) : '',
      n.comment ? ` ${n.comment}` : '', h('span', {class: 'muted'}, ` · ${n.source}, ${fmt.time(n.created_at)}`))))
    : empty('No feedback yet — POST /api/feedback with this request id, or use the form below.');
  const box = h('div', {}, list);
  if (['admin', 'operator'].includes(document.body.dataset.role)) {
    const form = h('form', {class: 'inline-form', onsubmit: async (event) => {
      event.preventDefault();
      const score = form.elements.score.value;
      const body = {request_id: rid, source: 'dashboard', label: form.elements.label.value || null,
        comment: form.elements.comment.value || null, score: score === '' ? null : Number(score)};
      try {
        await postJSON('/api/feedback', body);
        location.reload();
      } catch (err) {
        fill(note, h('span', {class: 'login-error'}, err.message));
      }
    }},
    h('label', {}, 'Score', h('input', {name: 'score', type: 'number', step: 'any', style: {width: '90px'}})),
    h('label', {}, 'Label', h('input', {name: 'label', placeholder: 'e.g. helpful'})),
    h('label', {}, 'Comment', h('input', {name: 'comment', style: {width: '260px'}})),
    h('button', {type: 'submit', class: 'secondary'}, 'Add feedback'));
    const note = h('div', {});
    box.append(h('div', {style: {marginTop: '10px'}}, form, note));
  }
  return section('Feedback', 'trace-feedback', box);
}

async function sessionSection(r) {
  if (!r.session_id) {
    return section('Session', 'trace-session', empty('Not part of a session: clients group requests '
      + 'with the x-warden-session header.'));
  }
  const link = h('a', {href: `/ui/requests${query({session: r.session_id, range: '30d'})}`}, r.session_id);
  let others = [];
  try {
    others = (await getJSON(`/api/requests${query({session: r.session_id, limit: 200})}`)).data;
  } catch {
    others = [];
  }
  const i = others.findIndex((o) => o.request_id === r.request_id);
  const nav = (o, text) => (o ? h('a', {href: `/ui/requests/${encodeURIComponent(o.request_id)}`}, text) : null);
  const around = i < 0 ? others.slice(0, 9) : others.slice(Math.max(0, i - 4), i + 5);
  return section('Session', 'trace-session',
    h('p', {}, 'Session ', link, ` · ${others.length}${others.length === 200 ? '+' : ''} requests `,
      nav(others[i + 1], '← previous'), i >= 0 && others[i + 1] && others[i - 1] ? ' · ' : '', nav(others[i - 1], 'next →')),
    h('ul', {class: 'plain neighbours'}, around.map((o) => h('li', {},
      h('a', {href: `/ui/requests/${encodeURIComponent(o.request_id)}`,
        class: o.request_id === r.request_id ? 'current' : null}, fmt.time(o.started_at)),
      ` · ${o.model} · `, badge(o.status, o.status === 'ok' ? 'ok' : o.status)))));
}

async function load() {
  const {record: r, payload, feedback} = await getJSON(`/api/requests/${encodeURIComponent(rid)}`);
  const status = badge(r.status === 'ok' ? `ok ${r.http_status}` : `${r.status} ${r.http_status}`,
    r.status === 'ok' ? 'ok' : r.status);
  const tokens = `${fmt.count(r.input_tokens)} in · ${fmt.count(r.output_tokens)} out`
    + (r.cached_tokens ? ` (${fmt.count(r.cached_tokens)} cached)` : '');
  const cost = r.cost_usd !== null ? fmt.usd(r.cost_usd)
    : (r.attempts.length ? 'unknown (no price)' : '– (no upstream call)');
  const facts = h('section', {class: 'card'}, h('div', {class: 'facts'},
    fact('Status', status), fact('Started', fmt.time(r.started_at)), fact('Model', r.model),
    fact('Key', r.key_id ?? '–'), fact('Team', r.team ?? '–'), fact('User', r.end_user ?? '–'),
    fact('Latency', fmt.duration(r.latency_s)),
    fact('Time to first token', r.ttft_s === null ? '–' : fmt.duration(r.ttft_s), 'trace-ttft'),
    fact('Tokens', tokens, 'trace-tokens'), fact('Cost', cost, 'trace-cost'),
    fact('Output speed', fmt.tokensRate(r.output_tokens_per_s)),
    fact('API', `${r.api}${r.stream ? ', streamed' : ''}`),
    fact('Trace id', h('code', {}, r.trace_id || '–')), fact('Region', r.region ?? '–'),
    fact('Client request id', h('code', {}, r.client_request_id ?? '–')),
    r.truncated?.length ? fact('Cut to fit the store', r.truncated.join(', '), 'trace-truncated') : null,
    Object.keys(r.tags).length ? fact('Tags', Object.entries(r.tags).map(([k, v]) => `${k}=${v}`).join(', ')) : null));
  const trace = h('div', {testid: 'trace'}, facts, attempts(r), findingsSection(r),
    inputSection(r, payload), outputSection(r, payload), feedbackSection(feedback), await sessionSection(r));
  fill(slot, trace);
}

start(load);
