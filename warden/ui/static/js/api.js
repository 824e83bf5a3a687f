// Calls to the gateway's /api with the session cookie, and how a page shows what failed.

export class ApiError extends Error {
  constructor(status, message, code = null) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function parse(response) {
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = body?.error?.message
      || `The gateway answered ${response.status} ${response.statusText || ''}`.trim();
    throw new ApiError(response.status, message, body?.error?.code ?? null);
  }
  return body;
}

async function call(method, path, body, signal) {
  const init = {method, credentials: 'same-origin', headers: {accept: 'application/json'}, signal};
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'The gateway cannot be reached; check that it is running, then reload.');
  }
  return parse(response);
}

export const getJSON = (path, signal) => call('GET', path, undefined, signal);
export const postJSON = (path, body) => call('POST', path, body);
export const deleteJSON = (path) => call('DELETE', path);

/** A query string of the set values of `params` (arrays repeat the key). */
export function query(params) {
  const out = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === '') continue;
    for (const one of Array.isArray(value) ? value : [value]) out.append(key, String(one));
  }
  const text = out.toString();
  return text ? `?${text}` : '';
}

/** Show what failed at the top of the page (data-testid="page-error"). */
export function showError(err) {
  let box = document.querySelector('[data-testid="page-error"]');
  if (!box) {
    box = document.createElement('div');
    box.className = 'page-error';
    box.dataset.testid = 'page-error';
    box.setAttribute('role', 'alert');
    document.querySelector('main').prepend(box);
  }
  box.replaceChildren(err?.message || String(err));
  if (err?.status === 401) {
    const next = encodeURIComponent(location.pathname + location.search);
    const link = document.createElement('a');
    link.href = `/ui/login?next=${next}`;
    link.textContent = 'Log in again';
    box.append(' ', link);
  }
}

export function clearError() {
  document.querySelector('[data-testid="page-error"]')?.remove();
}

/** The page has rendered its first data (benchmarks and tests wait for this). */
export function markReady() {
  document.body.dataset.ready = '1';
}

/** Run a page's first load: its errors go to the page, and the page is ready either way. */
export async function start(load) {
  try {
    await load();
  } catch (err) {
    if (err?.name !== 'AbortError') showError(err);
  } finally {
    markReady();
  }
}
