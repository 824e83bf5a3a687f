// Following a server-sent event stream (GET /api/live) with fetch: the stream ends every few
// seconds by design (the server's STREAM_S) and is followed again at once; a failure is
// reported and retried.

import {ApiError} from './api.js';

function parseEvents(buffer, onEvent) {
  const blocks = buffer.split('\n\n');
  const rest = blocks.pop();
  for (const block of blocks) {
    let name = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) name = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
    }
    if (data.length) onEvent(name, JSON.parse(data.join('\n')));
  }
  return rest;
}

/**
 * Follow `url`: onEvent(name, data) for each event; onProblem(ApiError) when it fails (then
 * it tries again in a few seconds, except after a 401 or 403). Returns stop().
 */
export function follow(url, {onEvent, onProblem}) {
  const controller = new AbortController();
  let stopped = false;

  async function once() {
    let response;
    try {
      response = await fetch(url, {headers: {accept: 'text/event-stream'},
        credentials: 'same-origin', signal: controller.signal});
    } catch (err) {
      if (err.name === 'AbortError') return 'stop';
      onProblem(new ApiError(0, 'Lost the connection to the gateway; trying again…'));
      return 'retry';
    }
    if (!response.ok) {
      let message = `The gateway answered ${response.status}`;
      let code = null;
      try {
        const body = await response.json();
        message = body?.error?.message || message;
        code = body?.error?.code ?? null;
      } catch {
        // not JSON: keep the status line
      }
      onProblem(new ApiError(response.status, message, code));
      return response.status === 401 || response.status === 403 ? 'stop' : 'retry';
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const {value, done} = await reader.read();
        if (done) return 'again';
        buffer = parseEvents(buffer + decoder.decode(value, {stream: true}), onEvent);
      }
    } catch (err) {
      if (err.name === 'AbortError' || stopped) return 'stop';
      onProblem(new ApiError(0, 'Lost the connection to the gateway; trying again…'));
      return 'retry';
    }
  }

  (async () => {
    while (!stopped) {
      const next = await once();
      if (next === 'stop' || stopped) return;
      if (next === 'retry') await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  })();

  return () => {
    stopped = true;
    controller.abort();
  };
}
