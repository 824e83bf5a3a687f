// Building DOM without HTML strings: every text goes in as text, never as markup.

/** An element: h('a', {href: '/x', testid: 'nav'}, 'text', child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'testid') el.dataset.testid = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'style') Object.assign(el.style, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const byTestId = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** The empty state: what is missing and what to do about it. */
export function empty(text) {
  return h('div', {class: 'empty', testid: 'empty'}, text);
}

/**
 * A table: columns are {label, num, wrap, name, cell(row) -> node or text}; rowAttrs(row) ->
 * attributes. A `name` column is kept on one line (cut with an ellipsis, whole in its title).
 */
export function table(columns, rows, rowAttrs = () => ({}), className = '') {
  return h('div', {class: 'table-wrap'}, h('table', {class: `data ${className}`},
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', {class: c.num ? 'num' : null}, c.label)))),
    h('tbody', {}, rows.map((row) => h('tr', rowAttrs(row),
      columns.map((c) => h('td', {class: c.num ? 'num' : (c.wrap ? 'wrap' : (c.name ? 'name' : null))},
        c.cell(row))))))));
}

/** A name on one line, cut to fit, with a share bar (0..1) under it. */
export function named(text, fraction = null) {
  return [h('div', {class: 'cut', title: text}, text), fraction === null ? null : share(fraction)];
}

/** A small bar showing a share (0..1) of a total. */
export function share(fraction) {
  const pct = Math.max(0, Math.min(1, fraction || 0)) * 100;
  return h('span', {class: 'share', title: `${pct.toFixed(1)} %`}, h('span', {style: {width: `${pct}%`}}));
}

export function badge(text, kind = '') {
  return h('span', {class: `badge ${kind}`}, text);
}

/** Call fn at most once per `ms`, after the calls stop. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
