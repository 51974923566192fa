import type { JudgeEvidence, MetricEvidence } from '../gates/judge.js';
import { evidenceLines } from '../gates/judge.js';
import { fmtValue } from '../actions/wait-drained.js';
import { esc } from './html.js';
import type { GateRow } from './model.js';
import { when } from './markdown.js';

/** The judge gates of a report (rows with evidence). */
export function judgeRows(gates: GateRow[]): (GateRow & { evidence: JudgeEvidence })[] {
  return gates.filter((g): g is GateRow & { evidence: JudgeEvidence } => !!g.evidence);
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

const pct = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? (v === undefined ? '' : v > 0 ? '+inf' : '-inf') : `${v >= 0 ? '+' : ''}${fmtValue(Math.round(v * 1000) / 10)}%`);

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
        `<p>${esc(when(g.t))} — score ${esc(e.score)} (pass ≥ ${esc(e.pass)}, marginal ≥ ${esc(e.marginal)}): ${esc(e.why)}<br>window ${esc(e.window.start)} … ${esc(e.window.end)}, step ${esc(e.window.step)}, minSamples ${esc(e.minSamples)}</p>`,
    );
    parts.push('<table><tr><th>Metric</th><th>Class</th><th>Samples G/B</th><th>GREEN</th><th>BLUE</th><th>Shift (CI)</th><th>p</th><th>Tolerance</th><th>Why</th><th>Distribution</th></tr>');
    for (const m of e.metrics) {
      const mcls = m.classification === 'inconclusive' ? 'warn' : m.failed ? 'bad' : 'ok';
      const drop = (d: MetricEvidence['green']['dropped']) => (d.nan + d.gaps + d.stale ? ` <small>(−${d.nan} NaN, −${d.gaps} gaps, −${d.stale} stale)</small>` : '');
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

/** The report section (Markdown). */
export function judgeMarkdown(gates: GateRow[]): string[] {
  const rows = judgeRows(gates);
  if (!rows.length) return [];
  const out = ['## Canary judge', ''];
  for (const g of rows) {
    out.push(`### Wave ${g.wave}: ${g.check} — ${g.evidence.verdict} (${when(g.t)})`, '');
    for (const l of evidenceLines(g.evidence)) out.push(`- ${l.trim()}`);
    out.push('');
  }
  return out;
}
