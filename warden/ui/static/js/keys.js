// API keys (admins): the store's keys, a form to create one (its token shown once), and
// revocation after a confirmation in the page.

import {deleteJSON, getJSON, postJSON, start, showError, clearError} from './api.js';
import {badge, byTestId, empty, fill, h} from './dom.js';
import * as fmt from './format.js';

const body = document.getElementById('keys');
const form = document.getElementById('create');
const dialog = document.getElementById('confirm-dialog');
let pending = null; // the key the dialog asks about

function row(k) {
  const revoked = k.revoked_at !== null;
  return h('tr', {testid: 'key-row', dataset: {keyId: k.id}},
    h('td', {}, h('code', {}, k.id)), h('td', {}, k.name), h('td', {}, k.role), h('td', {}, k.team ?? '–'),
    h('td', {}, k.models ? k.models.join(', ') : 'all'),
    h('td', {}, fmt.time(k.created_at)), h('td', {}, k.last_used_at ? fmt.time(k.last_used_at) : 'never'),
    h('td', {}, revoked ? badge(`revoked ${fmt.time(k.revoked_at)}`, 'bad') : badge('active', 'ok')),
    h('td', {}, revoked ? null : h('button', {type: 'button', class: 'small danger', testid: 'key-revoke',
      onclick: () => ask(k)}, 'Revoke')));
}

async function load() {
  const found = await getJSON('/api/keys');
  const keys = [...found.data].sort((a, b) => b.created_at - a.created_at);
  fill(body, keys.map(row));
  fill(document.getElementById('keys-empty'), keys.length ? null
    : empty('No keys in the store yet — create one above (or with `warden keys create`).'));
}

function ask(key) {
  pending = key;
  fill(document.getElementById('confirm-text'), 'Revoke the key ', h('strong', {}, key.name), ' (',
    h('code', {}, key.id), ')? Requests with it are refused at once, and it cannot be restored.');
  dialog.showModal();
}

dialog.addEventListener('close', async () => {
  const key = pending;
  pending = null;
  if (dialog.returnValue !== 'ok' || !key) return;
  try {
    await deleteJSON(`/api/keys/${encodeURIComponent(key.id)}`);
    clearError();
    await load();
  } catch (err) {
    showError(err);
  }
});

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = form.elements.name.value.trim();
  if (!name) {
    showError(new Error('A key needs a name: who or what will use it.'));
    return;
  }
  const spec = {name, role: form.elements.role.value};
  const team = form.elements.team.value.trim();
  if (team) spec.team = team;
  const button = byTestId('key-create-submit');
  button.disabled = true;
  try {
    const made = await postJSON('/api/keys', spec);
    clearError();
    const token = h('code', {testid: 'new-key-token'}, made.token);
    fill(document.getElementById('new-key'), h('div', {class: 'token'},
      h('strong', {}, `Key ${made.name} (${made.id}):`), token,
      h('button', {type: 'button', class: 'small secondary', onclick: async (e) => {
        try {
          await navigator.clipboard.writeText(made.token);
          e.target.textContent = 'Copied';
        } catch {
          e.target.textContent = 'Select and copy it';
        }
      }}, 'Copy'),
      h('span', {class: 'muted'}, 'Shown only this once: copy it now.')));
    form.reset();
    await load();
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
  }
});

start(load);
