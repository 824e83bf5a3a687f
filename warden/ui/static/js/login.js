// The login form: the key is posted as JSON; a refusal is shown in the page (no navigation),
// a success goes to the page asked for.

import {h} from './dom.js';
import {markReady} from './api.js';

const form = document.getElementById('login-form');
const message = document.getElementById('login-message');
const button = form.querySelector('[data-testid="login-submit"]');

function refuse(text) {
  message.replaceChildren(h('p', {class: 'login-error', testid: 'login-error', role: 'alert'}, text));
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const key = form.elements.key.value.trim();
  if (!key) {
    refuse('Enter an API key (an admin, operator or viewer key).');
    return;
  }
  button.disabled = true;
  try {
    const response = await fetch('/ui/login', {method: 'POST', credentials: 'same-origin',
      headers: {'content-type': 'application/json', accept: 'application/json'},
      body: JSON.stringify({key, next: form.elements.next.value})});
    const body = await response.json().catch(() => null);
    if (response.ok && body?.next) {
      location.assign(body.next);
      return;
    }
    refuse(body?.error?.message || `The gateway answered ${response.status}.`);
  } catch {
    refuse('The gateway cannot be reached; check that it is running.');
  } finally {
    button.disabled = false;
  }
});

markReady();
