import { formatMs } from '../util/duration.js';
import { evidenceLines } from '../gates/judge.js';
import { judgeRows, type GateRow } from './model.js';
import type { Report } from './model.js';

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
  out.push(`# Release ${r.release} ${r.version}`, '');
  out.push(`- Status: **${r.status}**${r.reason ? ` — ${cell(r.reason)}` : ''}`);
  out.push(`- From ${when(r.start)} to ${when(r.end)} (${span(r.start, r.end)})`);
  if (r.playbook) out.push(`- Playbook: ${r.playbook}${r.planHash ? ` (plan ${r.planHash})` : ''}`);
  const done = r.hosts.filter((h) => h.status === 'done').length;
  out.push(`- Hosts: ${done}/${r.hosts.length} done in ${r.waves.length} wave(s)`, '');

  out.push('## Timeline', '');
  out.push(table(['Wave', 'Status', 'Start', 'End', 'Took', 'Hosts'], r.waves.map((w) => [String(w.wave), w.status, when(w.start), when(w.end), span(w.start, w.end), w.hosts.join(', ')])));
  out.push('');
  out.push(
    table(
      ['Wave', 'Host', 'Status', 'Start', 'Took', 'Steps'],
      r.hosts.map((h) => [
        String(h.wave),
        h.host,
        h.status,
        when(h.start),
        span(h.start, h.end),
        h.spans.map((s) => `${s.kind === 'undo' ? 'undo ' : ''}${s.step}${s.attempt && s.attempt > 1 ? ` #${s.attempt}` : ''} ${s.result} ${span(s.start, s.end)}`).join('; '),
      ]),
    ),
  );
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
