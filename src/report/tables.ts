import { formatMs } from '../util/duration.js';
import type { AppRow, HostRow, Report } from './model.js';

/** `Release` or, for a train, `Release train`. */
export const releaseTitle = (r: Report): string => `Release${r.train ? ' train' : ''} ${r.release} ${r.version}`;

/** An app's part of each train wave, e.g. `1 done · 2 running · 3 pending`. */
export const appWaves = (a: AppRow): string => a.waves.map((w) => `${w.wave} ${w.status}`).join(' · ');

/** The columns of the Apps table of a train, per app. */
export const APP_HEAD = ['App', 'Version', 'Deploy', 'After', 'Status', 'Hosts done', 'Waves', 'Logs'];
export const appCells = (a: AppRow): string[] => [
  a.name,
  a.version ?? '',
  a.deploy ? 'yes' : 'no (deploy: false)',
  a.after.join(', '),
  a.status,
  `${a.done}/${a.hosts}`,
  appWaves(a),
  a.logDir ?? '',
];

/** Each step attempt of a host with its result and duration. */
export const stepsText = (h: HostRow): string =>
  h.spans
    .map((s) => `${s.kind === 'undo' ? 'undo ' : ''}${s.step}${s.attempt && s.attempt > 1 ? ` #${s.attempt}` : ''} ${s.result} ${span(s.start, s.end)}`)
    .join('; ');

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

export function values(v: Record<string, number | string> | undefined): string {
  if (!v || !Object.keys(v).length) return '';
  return Object.entries(v)
    .map(([k, x]) => `${k}=${x}`)
    .join(', ');
}

/** A table of the report, the same in every format; `status` lists the columns that hold a status (a badge in HTML). */
export interface ReportTable {
  head: string[];
  rows: string[][];
  status: number[];
}

/** A titled section of the report: its table, or the text that says it is empty. */
export interface ReportSection {
  title: string;
  table?: ReportTable;
  empty: string;
}

const byTime = (rows: string[][]): string[][] => rows.sort((a, b) => a[0]!.localeCompare(b[0]!));

export function wavesTable(r: Report): ReportTable {
  return {
    head: ['Wave', 'Status', 'Start', 'End', 'Took', 'Hosts'],
    rows: r.waves.map((w) => [String(w.wave), w.status, when(w.start), when(w.end), span(w.start, w.end), w.hosts.join(', ')]),
    status: [1],
  };
}

/** Every host with its steps, and its log's path when any host has one. */
export function hostsTable(r: Report): ReportTable {
  const logs = r.hosts.some((h) => h.log);
  return {
    head: ['Wave', 'Host', 'Status', 'Start', 'Took', 'Steps', ...(logs ? ['Log'] : [])],
    rows: r.hosts.map((h) => [String(h.wave), h.host, h.status, when(h.start), span(h.start, h.end), stepsText(h), ...(logs ? [h.log ?? ''] : [])]),
    status: [2],
  };
}

/** The waves' events in time order; undefined when there are none. */
export function eventsTable(r: Report): ReportTable | undefined {
  const rows = r.waves.flatMap((w) => w.events.map((e) => [when(e.t), String(w.wave), e.what]));
  return rows.length ? { head: ['Time', 'Wave', 'Event'], rows: byTime(rows), status: [] } : undefined;
}

const some = (rows: string[][], head: string[], status: number[] = []): ReportTable | undefined => (rows.length ? { head, rows, status } : undefined);

export const gatesSection = (r: Report): ReportSection => ({
  title: 'Gates',
  table: some(
    r.gates.map((g) => [when(g.t), String(g.wave), g.check, g.host ?? '', g.ok ? 'ok' : 'FAILED', g.observed, values(g.values)]),
    ['Time', 'Wave', 'Check', 'Host', 'Result', 'Observed', 'Values'],
    [4],
  ),
  empty: 'No gate was evaluated.',
});

export const failuresSection = (r: Report): ReportSection => ({
  title: 'Failures',
  table: some(
    r.failures.map((f) => [when(f.t), f.wave !== undefined ? String(f.wave) : '', f.what, f.error]),
    ['Time', 'Wave', 'What', 'Error'],
  ),
  empty: 'None.',
});

/** The sections after the host logs: rollbacks, operator actions and (when any were sent) notifications. */
export function closingSections(r: Report): ReportSection[] {
  const out: ReportSection[] = [
    {
      title: 'Rollbacks',
      table: some(
        r.rollbacks.map((x) => [when(x.t), x.what, x.detail ?? '']),
        ['Time', 'What', 'Detail'],
      ),
      empty: 'None.',
    },
    {
      title: 'Operator actions',
      table: some(
        r.actions.map((a) => [when(a.t), a.action + (a.detail ? ` (${a.detail})` : ''), a.by ?? '', a.reason ?? '']),
        ['Time', 'Action', 'By', 'Reason'],
      ),
      empty: 'None recorded.',
    },
  ];
  const notes = some(
    r.notifications.map((n) => [when(n.t), n.channel, n.kind, n.ok ? 'sent' : `failed: ${n.error ?? ''}`]),
    ['Time', 'Channel', 'Kind', 'Result'],
  );
  if (notes) out.push({ title: 'Notifications', table: notes, empty: '' });
  return out;
}
