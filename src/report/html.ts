import { formatMs } from '../util/duration.js';
import type { HostRow, Report, StepSpan } from './model.js';
import { judgeRows } from './model.js';
import * as tables from './tables.js';
import type { ReportSection, ReportTable } from './tables.js';
import type { GateRow } from './model.js';
import type { MetricEvidence } from '../gates/evidence.js';
import { fmtValue } from '../actions/wait-drained.js';

/** Escapes text for HTML content and attribute values. */
export function esc(text: string | number | undefined): string {
  return String(text ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const RESULT_COLOR: Record<string, string> = {
  done: '#2e9d57',
  failed: '#d64545',
  running: '#e0a526',
  did: '#e0a526',
  undone: '#8a8f98',
  'undo-failed': '#8b1e1e',
  'undo-skipped': '#c3c7cf',
};
const STATUS_CLASS = (status: string, s = status.toLowerCase()) =>
  s === 'done' ? 'ok' : s === 'failed' || s === 'rollback-failed' || s === 'verify-failed' || s === 'halted' ? 'bad' : s === 'rolled-back' ? 'muted' : 'warn';

const LABEL_W = 190;
const CHART_W = 860;
const ROW_H = 22;

/** The Gantt chart: one row per wave (its span), then one per host with a bar per step attempt. Inline SVG only. */
function gantt(r: Report): string {
  const times = [r.start, r.end, ...r.hosts.flatMap((h) => h.spans.flatMap((s) => [s.start, s.end]))].filter((t): t is string => !!t).map(Date.parse);
  if (!times.length) return '<p>Nothing ran yet.</p>';
  const t0 = Math.min(...times);
  const t1 = Math.max(t0 + 1000, ...times);
  const x = (t: string) => LABEL_W + ((Date.parse(t) - t0) / (t1 - t0)) * CHART_W;
  const rows: string[] = [];
  let y = 24;
  // Axis ticks.
  const ticks: string[] = [];
  for (let i = 0; i <= 5; i++) {
    const tx = LABEL_W + (i / 5) * CHART_W;
    ticks.push(
      `<line x1="${tx}" y1="18" x2="${tx}" y2="100%" class="tick"/><text x="${tx}" y="12" class="axis" text-anchor="${i === 0 ? 'start' : i === 5 ? 'end' : 'middle'}">+${esc(formatMs(((t1 - t0) * i) / 5))}</text>`,
    );
  }
  const bar = (s: StepSpan, yy: number, end: string) => {
    const x1 = x(s.start);
    const w = Math.max(2, x(s.end ?? end) - x1);
    const title = `${s.kind === 'undo' ? 'undo ' : ''}${s.step}${s.attempt && s.attempt > 1 ? ` attempt ${s.attempt}` : ''}: ${s.result} (${tables.span(s.start, s.end)})${s.error ? ` — ${s.error}` : ''}`;
    return `<rect x="${x1.toFixed(1)}" y="${yy + 4}" width="${w.toFixed(1)}" height="${ROW_H - 8}" rx="2" fill="${RESULT_COLOR[s.result] ?? '#5b8def'}"${s.kind === 'undo' ? ' fill-opacity="0.6" stroke="#333" stroke-dasharray="2 2"' : ''}><title>${esc(title)}</title></rect>`;
  };
  const hostRow = (h: HostRow) => {
    const out = [`<g class="host" data-host="${esc(h.host)}"><text x="${LABEL_W - 8}" y="${y + 15}" text-anchor="end" class="label">${esc(h.host)}</text>`];
    for (const s of h.spans) out.push(bar(s, y, r.end ?? s.start));
    out.push('</g>');
    y += ROW_H;
    return out.join('');
  };
  for (const w of r.waves) {
    const wx1 = w.start ? x(w.start) : LABEL_W;
    const wx2 = w.end ? x(w.end) : wx1;
    rows.push(
      `<g class="wave" data-wave="${w.wave}"><rect x="0" y="${y}" width="${LABEL_W + CHART_W}" height="${ROW_H}" class="waveband"/>` +
        `<text x="6" y="${y + 15}" class="wavelabel">Wave ${w.wave} · ${esc(w.status)}</text>` +
        (w.start
          ? `<rect x="${wx1.toFixed(1)}" y="${y + 7}" width="${Math.max(2, wx2 - wx1).toFixed(1)}" height="${ROW_H - 14}" class="wavebar"><title>wave ${w.wave}: ${esc(tables.when(w.start))} → ${esc(tables.when(w.end))} (${esc(tables.span(w.start, w.end))})</title></rect>`
          : '') +
        w.events
          .map((e) => `<path d="M${x(e.t).toFixed(1)} ${y + 3} l4 8 l-4 8 l-4 -8 z" class="mark"><title>${esc(`${tables.when(e.t)} ${e.what}`)}</title></path>`)
          .join('') +
        `</g>`,
    );
    y += ROW_H;
    for (const h of r.hosts.filter((h) => h.wave === w.wave)) rows.push(hostRow(h));
  }
  for (const h of r.hosts.filter((h) => !r.waves.some((w) => w.wave === h.wave))) rows.push(hostRow(h));
  const height = y + 6;
  return `<svg class="gantt" xmlns="http://www.w3.org/2000/svg" width="${LABEL_W + CHART_W + 10}" height="${height}" viewBox="0 0 ${LABEL_W + CHART_W + 10} ${height}" role="img" aria-label="timeline of waves and hosts">${ticks.join('')}${rows.join('')}</svg>`;
}

function table(head: string[], rows: string[][], rawCols: number[] = []): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c, i) => `<td>${rawCols.includes(i) ? c : esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

const badge = (s: string) => `<span class="badge ${STATUS_CLASS(s)}">${esc(s)}</span>`;

/** Sparkline of the numbers in a drain wait's poll lines (`value 12 …`); empty when none are numeric. */
function spark(polls: { text: string }[]): string {
  const nums = polls.map((p) => /(?:value|=)\s*(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)/i.exec(p.text)?.[1]).map((v) => (v === undefined ? NaN : Number(v)));
  const pts = nums.map((v, i) => ({ v, i })).filter((p) => Number.isFinite(p.v));
  if (pts.length < 2) return '';
  const max = Math.max(...pts.map((p) => p.v), 1e-9);
  const W = 160;
  const H = 28;
  const path = pts.map((p, k) => `${k ? 'L' : 'M'}${((p.i / (nums.length - 1)) * W).toFixed(1)} ${(H - 2 - (p.v / max) * (H - 4)).toFixed(1)}`).join(' ');
  return `<svg class="spark" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><path d="${path}" fill="none" stroke="#5b8def" stroke-width="1.5"/></svg>`;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e3e6eb;padding-bottom:4px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}th,td{border:1px solid #e3e6eb;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f6f8}.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;color:#fff}
.ok{background:#2e9d57}.bad{background:#d64545}.warn{background:#e0a526}.muted{background:#8a8f98}
.summary td:first-child{font-weight:600}.gantt{display:block;margin:8px 0;font-size:12px}
.gantt .tick{stroke:#eceef2}.gantt .axis{fill:#6b7280;font-size:11px}.gantt .label{fill:#1d2330}
.gantt .waveband{fill:#f3f5fa}.gantt .wavelabel{font-weight:600;fill:#1d2330}.gantt .wavebar{fill:#5b8def;fill-opacity:.35}
.gantt .mark{fill:#7c3aed}.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:10px;margin-right:4px;border-radius:2px}
.polls{margin:2px 0 10px 18px;font-size:12px;color:#374151}.spark{vertical-align:middle;margin-left:8px}
code{background:#f5f6f8;padding:0 3px;border-radius:3px}
`;

/** A report table with its status columns as badges. */
const tableOf = (t: ReportTable): string =>
  table(
    t.head,
    t.rows.map((row) => row.map((c, i) => (t.status.includes(i) ? badge(c) : c))),
    t.status,
  );

/** A section: its title, then its table or the text that says it is empty. */
const section = (sec: ReportSection): string[] => [`<h2>${esc(sec.title)}</h2>`, sec.table ? tableOf(sec.table) : `<p>${esc(sec.empty)}</p>`];

function drainsHtml(r: Report): string[] {
  const out = ['<h2>Drain waits</h2>'];
  if (!r.drains.length) out.push('<p>No drain wait was recorded.</p>');
  for (const d of r.drains) {
    out.push(
      `<div class="drain"><b>Wave ${d.wave} · ${esc(d.host)}</b> ${esc(d.step)}: ${badge(d.result)} after ${esc(tables.span(d.start, d.end))}${d.summary ? ` — ${esc(d.summary)}` : ''}${spark(d.polls)}` +
        (d.polls.length ? `<ul class="polls">${d.polls.map((p) => `<li>${esc(tables.when(p.t))} ${esc(p.text)}</li>`).join('')}</ul>` : '') +
        `</div>`,
    );
  }
  return out;
}

/** The release report as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched. */
export function reportHtml(r: Report): string {
  const done = r.hosts.filter((h) => h.status === 'done').length;
  const legend = Object.entries(RESULT_COLOR)
    .filter(([k]) => k !== 'did')
    .map(([k, c]) => `<span><i style="background:${c}"></i>${esc(k)}</span>`)
    .join('');
  const parts: string[] = [];
  parts.push(`<h1>${esc(tables.releaseTitle(r))}</h1>`);
  parts.push(
    `<table class="summary"><tbody>` +
      `<tr><td>Status</td><td>${badge(r.status)}${r.reason ? ` ${esc(r.reason)}` : ''}</td></tr>` +
      `<tr><td>Time</td><td>${esc(tables.when(r.start))} → ${esc(tables.when(r.end))} (${esc(tables.span(r.start, r.end))})</td></tr>` +
      `<tr><td>Hosts</td><td>${done}/${r.hosts.length} done in ${r.waves.length} wave(s)${r.train ? ` over ${r.train.apps.length} apps` : ''}</td></tr>` +
      (r.playbook ? `<tr><td>Playbook</td><td><code>${esc(r.playbook)}</code>${r.planHash ? ` plan ${esc(r.planHash)}` : ''}</td></tr>` : '') +
      `</tbody></table>`,
  );
  if (r.train)
    parts.push(
      '<h2>Apps</h2>',
      table(
        tables.APP_HEAD,
        r.train.apps.map((a) => tables.appCells(a).map((c, i) => (i === 4 ? badge(c) : c))),
        [4],
      ),
    );
  parts.push(`<h2>Timeline</h2><div class="legend">${legend}<span><i style="background:#7c3aed"></i>wave event</span></div>${gantt(r)}`);
  for (const t of [tables.wavesTable(r), tables.hostsTable(r), tables.eventsTable(r)]) if (t) parts.push(tableOf(t));
  parts.push(...section(tables.gatesSection(r)), judgeHtml(r.gates), ...drainsHtml(r), ...section(tables.failuresSection(r)));
  const tails = r.hosts.filter((h) => h.logTail?.length);
  if (tails.length) {
    // Every host's log tail, folded; the hosts that did not finish cleanly open.
    const troubled = new Set(tables.troubledHosts(r));
    parts.push('<h2>Host logs</h2>');
    for (const h of tails)
      parts.push(
        `<details${troubled.has(h) ? ' open' : ''}><summary>${esc(h.host)} ${badge(h.status)} <code>${esc(h.log)}</code></summary><pre>${esc(h.logTail!.join('\n'))}</pre></details>`,
      );
  }
  for (const sec of tables.closingSections(r)) parts.push(...section(sec));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${esc(`Release ${r.release} ${r.version} — ${r.status}`)}</title><style>${CSS}</style></head>
<body>
${parts.join('\n')}
<p style="color:#6b7280;font-size:12px">Generated by graywave from the release journal.</p>
</body></html>
`;
}

const W = 420;
const GREEN = '#2e9d57';
const BLUE = '#3b6fd6';

/**
 * A small GREEN-vs-BLUE distribution plot (inline SVG): value metrics as two quantile strips on one scale (whiskers
 * 5–95 %, box 25–75 %, median tick, dots at every 5 %); count metrics as two rate bars.
 */
export function metricPlot(m: MetricEvidence): string {
  const rows: [string, string, MetricEvidence['green']][] = [
    ['GREEN', GREEN, m.green],
    ['BLUE', BLUE, m.blue],
  ];
  const left = 52;
  const right = W - 12;
  if (m.kind === 'count') {
    const rates = rows.map(([, , g]) => g.median ?? 0);
    const max = Math.max(...rates, Number.EPSILON);
    const bars = rows.map(([label, color, g], i) => {
      const y = 8 + i * 24;
      const w = ((g.median ?? 0) / max) * (right - left);
      return `<text x="4" y="${y + 12}" font-size="11">${label}</text><rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="16" fill="${color}"/><text x="${Math.min(left + w + 4, right - 90).toFixed(1)}" y="${y + 12}" font-size="11">${esc(g.events ?? 0)}/${esc(g.total ?? 0)} (${esc(fmtValue(Number(((g.median ?? 0) * 100).toPrecision(3))))}%)</text>`;
    });
    return `<svg class="judge-plot" width="${W}" height="60" viewBox="0 0 ${W} 60" role="img" aria-label="${esc(m.name)}: GREEN vs BLUE rate">${bars.join('')}</svg>`;
  }
  const all = rows.flatMap(([, , g]) => g.quantiles ?? []);
  if (!all.length) return '<span class="muted">no samples</span>';
  const lo = Math.min(...all);
  const hi = Math.max(...all);
  const x = (v: number) => (hi === lo ? (left + right) / 2 : left + ((v - lo) / (hi - lo)) * (right - left));
  const strips = rows.map(([label, color, g], i) => {
    const q = g.quantiles;
    const y = 10 + i * 26;
    if (!q?.length) return `<text x="4" y="${y + 10}" font-size="11">${label}: no samples</text>`;
    const [p5, p25, p50, p75, p95] = [q[1]!, q[5]!, q[10]!, q[15]!, q[19]!];
    return (
      `<text x="4" y="${y + 10}" font-size="11">${label}</text>` +
      `<line x1="${x(p5).toFixed(1)}" x2="${x(p95).toFixed(1)}" y1="${y + 6}" y2="${y + 6}" stroke="${color}"/>` +
      `<rect x="${x(p25).toFixed(1)}" y="${y}" width="${Math.max(1, x(p75) - x(p25)).toFixed(1)}" height="12" fill="${color}" fill-opacity="0.35" stroke="${color}"/>` +
      `<line x1="${x(p50).toFixed(1)}" x2="${x(p50).toFixed(1)}" y1="${y - 2}" y2="${y + 14}" stroke="${color}" stroke-width="2"/>` +
      q.map((v) => `<circle cx="${x(v).toFixed(1)}" cy="${y + 6}" r="1.5" fill="${color}"/>`).join('')
    );
  });
  const axis = `<text x="${left}" y="70" font-size="10" fill="#666">${esc(fmtValue(lo))}</text><text x="${right}" y="70" font-size="10" fill="#666" text-anchor="end">${esc(fmtValue(hi))}</text>`;
  return `<svg class="judge-plot" width="${W}" height="74" viewBox="0 0 ${W} 74" role="img" aria-label="${esc(m.name)}: GREEN vs BLUE distribution">${strips.join('')}${axis}</svg>`;
}

const pct = (v: number | undefined) =>
  v === undefined || !Number.isFinite(v) ? (v === undefined ? '' : v > 0 ? '+inf' : '-inf') : `${v >= 0 ? '+' : ''}${fmtValue(Math.round(v * 1000) / 10)}%`;

function shiftText(m: MetricEvidence): string {
  if (!m.shift) return '';
  return `${pct(m.shift.relative)} [${pct(m.shift.relativeLower)}, ${pct(m.shift.relativeUpper)}] (${Math.round(m.shift.level * 100)}% CI)`;
}

function centre(m: MetricEvidence, g: MetricEvidence['green']): string {
  if (g.median === undefined) return '';
  return m.kind === 'count' ? `${fmtValue(Number((g.median * 100).toPrecision(3)))}%` : fmtValue(g.median);
}

/** The report section (HTML): per judge gate its verdict and score, then per metric the evidence and a plot. */
export function judgeHtml(gates: GateRow[]): string {
  const rows = judgeRows(gates);
  if (!rows.length) return '';
  const parts = ['<h2>Canary judge</h2>'];
  for (const g of rows) {
    const e = g.evidence;
    const cls = e.verdict === 'pass' ? 'ok' : e.verdict === 'fail' ? 'bad' : 'warn';
    parts.push(
      `<h3>Wave ${g.wave}: ${esc(g.check)} <span class="badge ${cls}">${esc(e.verdict)}</span></h3>` +
        `<p>${esc(tables.when(g.t))} — score ${esc(e.score)} (pass ≥ ${esc(e.pass)}, marginal ≥ ${esc(e.marginal)}): ${esc(e.why)}<br>window ${esc(e.window.start)} … ${esc(e.window.end)}, step ${esc(e.window.step)}, minSamples ${esc(e.minSamples)}</p>`,
    );
    parts.push(
      '<table><tr><th>Metric</th><th>Class</th><th>Samples G/B</th><th>GREEN</th><th>BLUE</th><th>Shift (CI)</th><th>p</th><th>Tolerance</th><th>Why</th><th>Distribution</th></tr>',
    );
    for (const m of e.metrics) {
      const mcls = m.classification === 'inconclusive' ? 'warn' : m.failed ? 'bad' : 'ok';
      const drop = (d: MetricEvidence['green']['dropped']) =>
        d.nan + d.gaps + d.stale ? ` <small>(−${d.nan} NaN, −${d.gaps} gaps, −${d.stale} stale)</small>` : '';
      parts.push(
        `<tr><td>${esc(m.name)}${m.critical ? ' <small>critical</small>' : ''}</td><td><span class="badge ${mcls}">${esc(m.classification)}</span></td>` +
          `<td>${esc(m.green.samples)}${drop(m.green.dropped)} / ${esc(m.blue.samples)}${drop(m.blue.dropped)}</td><td>${esc(centre(m, m.green))}</td><td>${esc(centre(m, m.blue))}</td>` +
          `<td>${esc(shiftText(m))}</td><td>${m.p === undefined ? '' : esc(m.p < 0.0001 ? '<0.0001' : fmtValue(Number(m.p.toPrecision(2))))}</td><td>${esc(m.tolerance)} (bad: ${esc(m.bad)})</td><td>${esc(m.why)}</td><td>${metricPlot(m)}</td></tr>`,
      );
    }
    parts.push('</table>');
  }
  return parts.join('\n');
}
