// Time-series charts on uPlot (vendored: /ui/static/vendor/uPlot.iife.min.js, MIT), with a
// labelled y axis in the series' unit, a time x axis, and the page's width.

export const PALETTE = ['#2563eb', '#d97706', '#dc2626', '#059669', '#7c3aed', '#db2777',
  '#0891b2', '#65a30d', '#9333ea', '#ea580c'];
const AXIS = {stroke: '#6b7280', grid: {stroke: '#eef0f3', width: 1}, ticks: {stroke: '#e3e6eb', width: 1}};

/**
 * A chart in `el` of series [{label, color}], y values shown by `format` (with their unit) and
 * the y axis labelled `yLabel`. `bars` draws bars instead of lines. update([t, ...ys]) draws
 * new data (t in unix seconds); a chart whose series change is made anew. destroy() removes it.
 */
export function timeChart(el, {yLabel, format, bars = false, height = 220}) {
  let plot = null;
  let labels = '';

  // A value with no neighbour draws no line: mark those (and only those) with a dot.
  function lonely(u, seriesIdx) {
    const ys = u.data[seriesIdx];
    const out = [];
    for (let i = 0; i < ys.length; i++) {
      if (ys[i] != null && ys[i - 1] == null && ys[i + 1] == null) out.push(i);
    }
    return out;
  }

  function options(series) {
    return {
      width: Math.max(280, el.clientWidth),
      height,
      cursor: {drag: {x: false, y: false}},
      legend: {show: true},
      scales: {x: {time: true}, y: {range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1]}},
      axes: [
        {...AXIS, label: 'Time (local)', labelSize: 24, labelFont: '12px system-ui', font: '11px system-ui'},
        {...AXIS, label: yLabel, labelSize: 24, labelFont: '12px system-ui', font: '11px system-ui',
         size: 64, values: (u, ticks) => ticks.map(format)},
      ],
      series: [
        {value: (u, ts) => (ts === null ? '–' : new Date(ts * 1000).toLocaleString())},
        ...series.map((s, i) => {
          const color = s.color || PALETTE[i % PALETTE.length];
          return {
            label: s.label, stroke: color, width: bars ? 1 : 2,
            fill: bars ? `${color}bb` : undefined,
            paths: bars ? window.uPlot.paths.bars({size: [0.7, 48]}) : undefined,
            points: bars ? {show: false} : {show: true, size: 6, fill: color, filter: lonely},
            spanGaps: false,
            value: (u, v) => (v === null || v === undefined ? '–' : format(v)),
          };
        }),
      ],
    };
  }

  let timer = null;
  const onResize = () => {
    clearTimeout(timer);
    timer = setTimeout(() => plot?.setSize({width: Math.max(280, el.clientWidth), height}), 150);
  };
  window.addEventListener('resize', onResize);

  return {
    /** Remove the chart (before another takes its place). */
    destroy() {
      window.removeEventListener('resize', onResize);
      clearTimeout(timer);
      plot?.destroy();
      plot = null;
      el.replaceChildren();
    },
    update(series, data) {
      const key = series.map((s) => s.label).join('\u0000');
      if (plot && key === labels) {
        plot.setData(data);
        return;
      }
      if (plot) plot.destroy();
      el.replaceChildren();
      labels = key;
      plot = new window.uPlot(options(series), data, el);
    },
  };
}
