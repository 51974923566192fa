import { partOf } from '../journal/journal.js';
import { replay } from '../journal/replay.js';
import { trainHost } from '../plan/train.js';
import { waveStatus } from '../app/status.js';
import { buildReport, type AppInput, type AppRow, type HostRow, type Report, type ReportInput, type WaveRow } from './model.js';

/**
 * The report of a release train (issue #18) from its one journal: the train's own records (its waves, checks,
 * approvals, switchover, operator actions) and each app's records (tagged `app`), read as that app's own journal
 * with its plan's waves and steps and its hosts' logs (`<state>/apps/<app>/logs`). Hosts are named `app/host`,
 * an app's checks `app/check`, as `status` and the live view name them.
 */
export function buildTrainReport(input: ReportInput & { apps: AppInput[] }): Report {
  const own = partOf(input.records, undefined);
  const parts = input.apps.map((a) => ({
    a,
    r: buildReport({ records: partOf(input.records, a.name), waves: a.waves, steps: a.steps, hostLog: a.hostLog, logPath: a.logPath }),
  }));
  const journalled = [
    ...own.flatMap((r) => ('wave' in r && typeof r.wave === 'number' ? [r.wave] : [])),
    ...parts.flatMap(({ r }) => r.waves.map((w) => w.wave)),
  ];
  const indexes = input.waves?.map((w) => w.index) ?? [...new Set(journalled)].sort((x, y) => x - y);
  const top = buildReport({ records: own, waves: indexes.map((index) => ({ index, hosts: [] })) });
  const state = replay(own);
  // An app's lines that name one of its hosts name it `app/host`; the app's own halt and rollback boundaries are the train's to tell.
  const hostOf = (r: Report, text: string) => r.hosts.find((h) => text.startsWith(`${h.host} `))?.host;
  const rename = (app: string, text: string, host: string) => `${trainHost(app, host)}${text.slice(host.length)}`;

  const hosts: HostRow[] = parts.flatMap(({ a, r }) => r.hosts.map((h) => ({ ...h, host: trainHost(a.name, h.host), app: a.name })));
  hosts.sort((x, y) => x.wave - y.wave); // stable: apps in start order, each app's hosts in plan order
  const waves: WaveRow[] = top.waves.map((w) => {
    const rows = hosts.filter((h) => h.wave === w.wave);
    const planned = input.waves?.find((x) => x.index === w.wave)?.hosts ?? rows.map((h) => h.host);
    const statuses = planned.map((n) => rows.find((h) => h.host === n)?.status ?? 'pending');
    const starts = rows
      .map((h) => h.start)
      .filter((x): x is string => !!x)
      .sort();
    const ends = rows
      .map((h) => h.end)
      .filter((x): x is string => !!x)
      .sort();
    // An app's own wave boundaries (started/done/verified) are the train's to tell; its pauses, approvals and failed checks are kept.
    const appEvents = parts.flatMap(({ a, r }) =>
      (r.waves.find((x) => x.wave === w.wave)?.events ?? [])
        .filter((e) => !/^(started|done|verified)$/.test(e.what))
        .map((e) => ({ t: e.t, what: `${a.name}: ${e.what}` })),
    );
    return {
      ...w,
      hosts: planned,
      status: waveStatus(statuses, state.waves.get(w.wave)),
      start: starts[0],
      end: ends.at(-1),
      events: [...w.events, ...appEvents].sort((x, y) => x.t.localeCompare(y.t)),
    };
  });
  const apps: AppRow[] = parts.map(({ a, r }) => ({
    name: a.name,
    after: a.after ?? [],
    deploy: a.deploy ?? true,
    ...(a.version ? { version: a.version } : {}),
    status: waveStatus(
      r.hosts.map((h) => h.status),
      { verified: true },
    ),
    hosts: r.hosts.length,
    done: r.hosts.filter((h) => h.status === 'done').length,
    ...(a.logDir ? { logDir: a.logDir } : {}),
    waves: r.waves.map((w) => ({ wave: w.wave, status: w.status, hosts: w.hosts, start: w.start, end: w.end })),
  }));
  const byTime = <T extends { t: string }>(xs: T[]) => xs.sort((x, y) => x.t.localeCompare(y.t));
  return {
    ...top,
    train: { apps },
    end: [top.end, ...hosts.map((h) => h.end)]
      .filter((x): x is string => !!x)
      .sort()
      .at(-1),
    waves,
    hosts,
    gates: byTime([
      ...top.gates,
      ...parts.flatMap(({ a, r }) => r.gates.map((g) => ({ ...g, check: `${a.name}/${g.check}`, ...(g.host ? { host: trainHost(a.name, g.host) } : {}) }))),
    ]),
    drains: parts.flatMap(({ a, r }) => r.drains.map((d) => ({ ...d, host: trainHost(a.name, d.host) }))),
    failures: byTime([
      ...top.failures,
      ...parts.flatMap(({ a, r }) =>
        r.failures
          .filter((f) => f.what !== 'release halted')
          .map((f) => (f.host ? { ...f, host: trainHost(a.name, f.host), what: rename(a.name, f.what, f.host) } : { ...f, what: `app ${a.name}: ${f.what}` })),
      ),
    ]),
    rollbacks: byTime([
      ...top.rollbacks,
      ...parts.flatMap(({ a, r }) =>
        r.rollbacks.flatMap((x) => {
          const h = hostOf(r, x.what);
          return h ? [{ ...x, what: rename(a.name, x.what, h) }] : [];
        }),
      ),
    ]),
    notifications: byTime([...top.notifications, ...parts.flatMap(({ r }) => r.notifications)]),
  };
}

/** The report of what the input holds: a release train's (with `apps`) or one playbook's. */
export function releaseReport(input: ReportInput): Report {
  return input.apps ? buildTrainReport({ ...input, apps: input.apps }) : buildReport(input);
}
