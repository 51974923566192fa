import { formatMs } from '../util/duration.js';
import { evidenceLines } from '../gates/judge.js';
import { judgeRows, type GateRow } from './model.js';
import type { AppRow, HostRow, Report } from './model.js';

/** `Release` or, for a train, `Release train`. */
export const releaseTitle = (r: Report): string => `Release${r.train ? ' train' : ''} ${r.release} ${r.version}`;

/** An app's part of each train wave, e.g. `1 done · 2 running · 3 pending`. */
export const appWaves = (a: AppRow): string => a.waves.map((w) => `${w.wave} ${w.status}`).join(' · ');

/** The columns of the Apps table of a train, per app. */
export const APP_HEAD = ['App', 'Version', 'Deploy', 'After', 'Status', 'Hosts done', 'Waves', 'Logs'];
export const appCells = (a: AppRow): string[] => [a.name, a.version ?? '', a.deploy ? 'yes' : 'no (deploy: false)', a.after.join(', '), a.status, `${a.done}/${a.hosts}`, appWaves(a), a.logDir ?? ''];

/** Each step attempt of a host with its result and duration. */
export const stepsText = (h: HostRow): string => h.spans.map((s) => `${s.kind === 'undo' ? 'undo ' : ''}${s.step}${s.attempt && s.attempt > 1 ? ` #${s.attempt}` : ''} ${s.result} ${span(s.start, s.end)}`).join('; ');

/** Hosts whose log tail the report shows: those that did not finish cleanly (failed, stopped, rolled back). */
export const troubledHosts = (r: Report): HostRow[] => r.hosts.filter((h) => h.logTail?.length && h.status !== 'done' && h.status !== 'pending');

/** `2026-01-02T03:04:05.678Z` → `2026-01-02 03:04:05Z`. */
export function when(t: string | undefined): string {
  return t ? t.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—';
}

export function span(a: string | undefined, b: string | undefined): string {
  if (!a || !b) return '—';
  return formatMs(Math.max(0, Date.parse(b) - Date.parse(a)));
}

/** Escapes text for a markdown table cell (one line, no pipes). */
function cell(text: string | undefined): string {
  if (text === undefined || text === '') return '—';
  return text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
}

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

export function values(v: Record<string, number | string> | undefined): string {
  if (!v || !Object.keys(v).length) return '';
  return Object.entries(v)
    .map(([k, x]) => `${k}=${x}`)
    .join(', ');
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
  out.push(table(['Wave', 'Status', 'Start', 'End', 'Took', 'Hosts'], r.waves.map((w) => [String(w.wave), w.status, when(w.start), when(w.end), span(w.start, w.end), w.hosts.join(', ')])));
  out.push('');
  const logs = r.hosts.some((h) => h.log);
  out.push(table(['Wave', 'Host', 'Status', 'Start', 'Took', 'Steps', ...(logs ? ['Log'] : [])], r.hosts.map((h) => [String(h.wave), h.host, h.status, when(h.start), span(h.start, h.end), stepsText(h), ...(logs ? [h.log ?? ''] : [])])));
  out.push('');
  const events = r.waves.flatMap((w) => w.events.map((e) => [when(e.t), String(w.wave), e.what]));
  if (events.length) out.push(table(['Time', 'Wave', 'Event'], events.sort((a, b) => a[0]!.localeCompare(b[0]!))), '');

  out.push('## Gates', '');
  out.push(r.gates.length ? table(['Time', 'Wave', 'Check', 'Host', 'Result', 'Observed', 'Values'], r.gates.map((g) => [when(g.t), String(g.wave), g.check, g.host ?? '', g.ok ? 'ok' : 'FAILED', g.observed, values(g.values)])) : 'No gate was evaluated.', '');

  out.push(...judgeMarkdown(r.gates));
  out.push('## Drain waits', '');
  if (!r.drains.length) out.push('No drain wait was recorded.', '');
  for (const d of r.drains) {
    out.push(`- wave ${d.wave} **${d.host}** ${d.step}: ${d.result} after ${span(d.start, d.end)}${d.summary ? ` — ${cell(d.summary)}` : ''}`);
    for (const p of d.polls) out.push(`  - ${when(p.t)} ${cell(p.text)}`);
  }
  if (r.drains.length) out.push('');

  out.push('## Failures', '');
  out.push(r.failures.length ? table(['Time', 'Wave', 'What', 'Error'], r.failures.map((f) => [when(f.t), f.wave !== undefined ? String(f.wave) : '', f.what, f.error])) : 'None.', '');

  const troubled = troubledHosts(r);
  if (troubled.length) {
    out.push('## Host logs', '');
    for (const h of troubled) out.push(`### ${h.host} (${h.status}): the end of ${h.log}`, '', '```', ...h.logTail!, '```', '');
  }

  out.push('## Rollbacks', '');
  out.push(r.rollbacks.length ? table(['Time', 'What', 'Detail'], r.rollbacks.map((x) => [when(x.t), x.what, x.detail ?? ''])) : 'None.', '');

  out.push('## Operator actions', '');
  out.push(r.actions.length ? table(['Time', 'Action', 'By', 'Reason'], r.actions.map((a) => [when(a.t), a.action + (a.detail ? ` (${a.detail})` : ''), a.by ?? '', a.reason ?? ''])) : 'None recorded.', '');

  if (r.notifications.length) {
    out.push('## Notifications', '');
    out.push(table(['Time', 'Channel', 'Kind', 'Result'], r.notifications.map((n) => [when(n.t), n.channel, n.kind, n.ok ? 'sent' : `failed: ${n.error ?? ''}`])), '');
  }
  return out.join('\n');
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
