// Numbers with their units, as the tiles, tables and charts show them.

const nf = new Intl.NumberFormat('en-US');

/** `x` with about three significant digits; thousands separated from 1,000. */
export function sig(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  if (x === 0) return '0';
  const abs = Math.abs(x);
  if (abs >= 1000) return nf.format(Math.round(x));
  const decimals = Math.min(12, Math.max(0, digits - 1 - Math.floor(Math.log10(abs))));
  const text = x.toFixed(decimals);
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}

export const count = (n) => (n === null || n === undefined ? '–' : nf.format(n));
export const rate = (x) => `${sig(x ?? 0)} req/s`;
export const tokensRate = (x) => (x === null || x === undefined ? '– tok/s' : `${sig(x)} tok/s`);

/** Seconds as "183 ms" or "1.42 s". */
export function duration(s) {
  if (s === null || s === undefined) return '– ms';
  if (s < 0.01) return `${sig(s * 1000, 2)} ms`;
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  return `${sig(s)} s`;
}

/** A share (0..1) as "99.5 %"; never rounded up to 100 % or down to 0 % when it is not. */
export function percent(x) {
  if (x === null || x === undefined) return '– %';
  const v = x * 100;
  let digits = 1;
  while (digits < 4 && ((v < 100 && Number(v.toFixed(digits)) >= 100)
                        || (v > 0 && Number(v.toFixed(digits)) <= 0))) digits += 1;
  return `${v.toFixed(digits)} %`;
}

/** USD as "$12.34", "$0.0123" (three significant digits below a dollar); "–" when the price
 * is unknown (never a silent zero). */
export function usd(x) {
  if (x === null || x === undefined) return '–';
  if (x === 0) return '$0';
  if (Math.abs(x) >= 100) return `$${nf.format(Math.round(x))}`;
  if (Math.abs(x) >= 1) return `$${x.toFixed(2)}`;
  return `$${sig(x)}`;
}

const pad = (n) => String(n).padStart(2, '0');

/** Unix seconds as local "2025-01-31 13:04:05". */
export function time(ts) {
  if (!ts) return '–';
  const d = new Date(ts * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Unix seconds as a UTC day "2025-01-31". */
export function day(ts) {
  return new Date(ts * 1000).toISOString().slice(0, 10);
}

/** A bucket's length in words: "15 s", "1 min", "6 h". */
export function interval(seconds) {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

export const RANGE_SECONDS = {'15m': 900, '1h': 3600, '6h': 21600, '24h': 86400,
  '7d': 604800, '30d': 2592000};
