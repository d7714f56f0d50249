/**
 * The page's own script (plain browser JavaScript, run after d3 and Plot): reads the data block
 * (ReportData) and draws each chart into its `<figure data-chart="…">`. Every bar has a <title>
 * "LABEL: VALUE …" (what a pointer shows, and what the report test reads back). When it is done
 * it sets `data-rendered="true"` on <body>; an error is shown on the page and on the console.
 *
 * Kept as text (not compiled from TypeScript) so the page runs exactly this; String.raw, so a
 * backslash added to it one day reaches the page as written.
 */
export const REPORT_CHARTS_SCRIPT = String.raw`
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('hvmmu-report-data').textContent);
  var labels = data.runs.map(function (r) { return r.label; });
  var longest = labels.reduce(function (n, l) { return Math.max(n, l.length); }, 0);
  var marginLeft = Math.min(320, 16 + 7 * longest);
  var width = 760;
  var runColor = { domain: labels, scheme: 'tableau10' };

  function num(n) {
    if (n === null || n === undefined) return 'not counted';
    if (Number.isInteger(n)) return n.toLocaleString('en-US');
    return n.toLocaleString('en-US', { maximumFractionDigits: Math.abs(n) >= 100 ? 0 : 2 });
  }
  function pct(rate) { return rate === null ? 'not counted' : (100 * rate).toFixed(1) + '%'; }
  function height(rows) { return 46 + 30 * rows; }
  function show(id, node) {
    var slot = document.querySelector('[data-chart="' + id + '"] .plot');
    slot.replaceChildren(node);
  }
  function note(id, text) {
    var slot = document.querySelector('[data-chart="' + id + '"] .chart-note');
    slot.textContent = text;
  }
  function byLabel(rows) {
    return labels.filter(function (l) { return rows.some(function (r) { return r.label === l; }); });
  }

  // TLB hit rate (%), one bar per run.
  var rated = data.runs.filter(function (r) { return r.tlbHitRate !== null; });
  show('tlb-hit-rate', Plot.plot({
    width: width, marginLeft: marginLeft, marginRight: 20, insetRight: 60, height: height(rated.length),
    x: { domain: [0, 100], label: 'TLB hit rate (%)', grid: true },
    y: { domain: byLabel(rated), label: null },
    color: runColor,
    marks: [
      Plot.barX(rated, { x: function (r) { return 100 * r.tlbHitRate; }, y: 'label', fill: 'label',
        title: function (r) { return r.label + ': ' + pct(r.tlbHitRate) + ' TLB hit rate (' + num(r.tlbHits) + ' hits, ' + num(r.tlbMisses) + ' misses)'; } }),
      Plot.text(rated, { x: function (r) { return 100 * r.tlbHitRate; }, y: 'label', text: function (r) { return pct(r.tlbHitRate); }, dx: 4, textAnchor: 'start' }),
      Plot.ruleX([0])
    ]
  }));

  // Faults by where they went and of what kind: one facet per category, one bar per run.
  var categories = [];
  data.faults.forEach(function (f) { if (categories.indexOf(f.category) < 0) categories.push(f.category); });
  if (categories.length === 0) {
    note('faults', 'No faults in any run.');
  } else {
    show('faults', Plot.plot({
      width: width + 250, marginLeft: marginLeft, marginRight: 250, insetRight: 60,
      height: 40 + categories.length * (24 * labels.length + 14),
      x: { label: 'faults', grid: true },
      y: { domain: labels, label: null },
      fy: { domain: categories, label: null, axis: 'right' },
      color: runColor,
      marks: [
        Plot.barX(data.faults, { x: 'count', y: 'label', fy: 'category', fill: 'label',
          title: function (f) { return f.label + ': ' + num(f.count) + ' ' + f.category; } }),
        Plot.text(data.faults, { x: 'count', y: 'label', fy: 'category', text: function (f) { return num(f.count); }, dx: 4, textAnchor: 'start' }),
        Plot.ruleX([0])
      ]
    }));
  }

  // Host MMU bytes per mapped page, tables and rmap stacked.
  var sized = data.runs.filter(function (r) { return r.bytesPerMappedPage !== null; });
  show('bytes-per-page', Plot.plot({
    width: width, marginLeft: marginLeft, marginRight: 20, insetRight: 60, height: height(sized.length) + 30,
    x: { label: 'host MMU bytes per mapped guest page', grid: true },
    y: { domain: byLabel(sized), label: null },
    color: { domain: ['tables', 'rmap'], range: ['#4e79a7', '#f28e2b'], legend: true },
    marks: [
      Plot.barX(data.bytes, { x: 'bytesPerMappedPage', y: 'label', fill: 'part',
        title: function (b) { return b.label + ': ' + num(b.bytesPerMappedPage) + ' ' + b.part + ' bytes per mapped page'; } }),
      Plot.text(sized, { x: 'bytesPerMappedPage', y: 'label', text: function (r) { return num(r.bytesPerMappedPage); }, dx: 4, textAnchor: 'start' }),
      Plot.ruleX([0])
    ]
  }));
  if (data.bytesNotCounted.length > 0) note('bytes-per-page', 'Left out (its backend counts no table bytes, or it mapped no page): ' + data.bytesNotCounted.join(', ') + '.');

  // Accesses per second.
  show('accesses-per-second', Plot.plot({
    width: width, marginLeft: marginLeft, marginRight: 20, insetRight: 90, height: height(data.runs.length),
    x: { label: 'accesses per second', grid: true },
    y: { domain: labels, label: null },
    color: runColor,
    marks: [
      Plot.barX(data.runs, { x: 'accessesPerSecond', y: 'label', fill: 'label',
        title: function (r) { return r.label + ': ' + num(r.accessesPerSecond) + ' accesses per second (' + num(r.accesses) + ' in ' + num(r.elapsedMs) + ' ms)'; } }),
      Plot.text(data.runs, { x: 'accessesPerSecond', y: 'label', text: function (r) { return num(r.accessesPerSecond); }, dx: 4, textAnchor: 'start' }),
      Plot.ruleX([0])
    ]
  }));

  // Memory references per walk (hash: HPTEs read per search).
  var walked = data.runs.filter(function (r) { return r.refsPerWalk !== null; });
  if (walked.length === 0) {
    note('refs-per-walk', 'No run here has memory references per walk (its backend counts none, or it made no walk).');
  } else {
    show('refs-per-walk', Plot.plot({
      width: width, marginLeft: marginLeft, marginRight: 20, insetRight: 60, height: height(walked.length),
      x: { label: 'memory references per walk', grid: true },
      y: { domain: byLabel(walked), label: null },
      color: runColor,
      marks: [
        Plot.barX(walked, { x: 'refsPerWalk', y: 'label', fill: 'label',
          title: function (r) {
            return r.label + ': ' + num(r.refsPerWalk) + ' memory references per walk' +
              (r.walkRefs === null || r.walks === null ? ' (given with the run)' : ' (' + num(r.walkRefs) + ' in ' + num(r.walks) + ' walks)');
          } }),
        Plot.text(walked, { x: 'refsPerWalk', y: 'label', text: function (r) { return num(r.refsPerWalk); }, dx: 4, textAnchor: 'start' }),
        Plot.ruleX([0])
      ]
    }));
    if (data.walkRefsNotCounted.length > 0) note('refs-per-walk', 'Left out (its backend counts no walk references, or it made no walk): ' + data.walkRefsNotCounted.join(', ') + '.');
  }

  document.body.setAttribute('data-rendered', 'true');
})();
`;

/** Shows a script error on the page as well as on the console (installed before the libraries load). */
export const REPORT_ERROR_SCRIPT = `
window.addEventListener('error', function (event) {
  var box = document.getElementById('report-error');
  if (box) { box.hidden = false; box.textContent = 'The charts could not be drawn: ' + event.message; }
});
`;
