import { evidenceLines } from '../gates/judge.js';
import { judgeRows, type GateRow } from './model.js';
import type { Report } from './model.js';
import {
  APP_HEAD,
  appCells,
  closingSections,
  eventsTable,
  failuresSection,
  gatesSection,
  hostsTable,
  releaseTitle,
  span,
  troubledHosts,
  wavesTable,
  when,
  type ReportSection,
} from './tables.js';

/** Escapes text for a markdown table cell (one line, no pipes). */
function cell(text: string | undefined): string {
  if (text === undefined || text === '') return '—';
  return text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
}

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

/** A section of the markdown report: its title, then its table or the text that says it is empty. */
function section(sec: ReportSection): string[] {
  return [`## ${sec.title}`, '', sec.table ? table(sec.table.head, sec.table.rows) : sec.empty, ''];
}

/** The release report as markdown (what `graywave report` prints). */
export function reportMarkdown(r: Report): string {
  const out: string[] = [];
  out.push(`# ${releaseTitle(r)}`, '');
  out.push(`- Status: **${r.status}**${r.reason ? ` — ${cell(r.reason)}` : ''}`);
  out.push(`- From ${when(r.start)} to ${when(r.end)} (${span(r.start, r.end)})`);
  if (r.playbook) out.push(`- Playbook: ${r.playbook}${r.planHash ? ` (plan ${r.planHash})` : ''}`);
  const done = r.hosts.filter((h) => h.status === 'done').length;
  out.push(`- Hosts: ${done}/${r.hosts.length} done in ${r.waves.length} wave(s)${r.train ? ` over ${r.train.apps.length} apps` : ''}`, '');
  if (r.train) out.push('## Apps', '', table(APP_HEAD, r.train.apps.map(appCells)), '');

  out.push('## Timeline', '');
  for (const t of [wavesTable(r), hostsTable(r), eventsTable(r)]) if (t) out.push(table(t.head, t.rows), '');
  out.push(...section(gatesSection(r)), ...judgeMarkdown(r.gates), ...drainsMarkdown(r), ...section(failuresSection(r)));
  const troubled = troubledHosts(r);
  if (troubled.length) {
    out.push('## Host logs', '');
    for (const h of troubled) out.push(`### ${h.host} (${h.status}): the end of ${h.log}`, '', '```', ...h.logTail!, '```', '');
  }
  for (const sec of closingSections(r)) out.push(...section(sec));
  return out.join('\n');
}

function drainsMarkdown(r: Report): string[] {
  const out = ['## Drain waits', ''];
  if (!r.drains.length) out.push('No drain wait was recorded.', '');
  for (const d of r.drains) {
    out.push(`- wave ${d.wave} **${d.host}** ${d.step}: ${d.result} after ${span(d.start, d.end)}${d.summary ? ` — ${cell(d.summary)}` : ''}`);
    for (const p of d.polls) out.push(`  - ${when(p.t)} ${cell(p.text)}`);
  }
  if (r.drains.length) out.push('');
  return out;
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
