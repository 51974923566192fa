import { describe, expect, it } from 'vitest';
import { auditText, auditTrail } from '../../src/report/audit.js';
import { reportHtml } from '../../src/report/html.js';
import { reportMarkdown } from '../../src/report/markdown.js';
import { buildReport, pollsFromLog } from '../../src/report/model.js';
import { fixtureJournal, readFixture } from '../helpers/fixtures.js';

const T = (s: number) => new Date(Date.UTC(2026, 0, 1, 10, 0, s)).toISOString();
// A release that failed in wave 2 and rolled it back (fixtures/journals/), and the log of its host a1.
const records = fixtureJournal('rolled-back.jsonl');
const log = readFixture('journals/rolled-back.a1.log').trimEnd();
const input = {
  records,
  waves: [
    { index: 1, hosts: ['a1'] },
    { index: 2, hosts: ['b1'] },
    { index: 3, hosts: ['c1'] },
  ],
  steps: [
    { name: 'wait', action: 'waitDrained' },
    { name: 'deploy', action: 'run' },
  ],
  hostLog: (h: string) => (h === 'a1' ? log : undefined),
};

describe('report', () => {
  it('reads poll lines per step attempt from a host log', () => {
    const p = pollsFromLog(log);
    expect(p.get('wait')).toEqual([
      [
        { t: T(2), text: 'value 7 (0/2 polls <= 0)' },
        { t: T(3), text: 'value 0 (1/2 polls <= 0)' },
        { t: T(4), text: 'value 0 (2/2 polls <= 0)' },
      ],
    ]);
    expect(p.get('deploy')).toEqual([[{ t: T(5), text: 'not yet' }]]);
  });

  it('builds waves, hosts, gates, drain waits, failures, rollbacks and actions from the journal', () => {
    const r = buildReport(input);
    expect(r).toMatchObject({ release: 'shop', version: '2.0.0', status: 'rolled-back' });
    expect(r.waves.map((w) => [w.wave, w.status, w.start, w.end])).toEqual([
      [1, 'done', T(2), T(7)],
      [2, 'rolled-back', T(10), T(14)],
      [3, 'pending', undefined, undefined],
    ]);
    expect(r.hosts.map((h) => [h.host, h.status])).toEqual([
      ['a1', 'done'],
      ['b1', 'rolled-back'],
      ['c1', 'pending'],
    ]);
    expect(r.drains.map((d) => [d.host, d.result, d.summary, d.polls.length])).toEqual([
      ['a1', 'done', 'last value 0 after 3 poll(s)', 3],
      ['b1', 'done', 'last value 0 after 2 poll(s)', 0],
    ]);
    expect(r.gates[0]).toMatchObject({ check: 'p99 <latency>', values: { green: 120, blue: 110 } });
    expect(r.failures.map((f) => f.what)).toEqual(['b1 deploy']);
    expect(r.rollbacks.map((x) => x.what)).toEqual(['rollback started', 'b1 deploy undo-skipped', 'b1 wait undo-skipped', 'rolled back']);
    const md = reportMarkdown(r);
    expect(md).toContain('| 1 | p99 <latency> | — | ok | 120ms <= 200ms | green=120, blue=110 |');
    expect(md).toContain('  - 2026-01-01 10:00:02Z value 7 (0/2 polls <= 0)');
    expect(md).toContain('| approve (wave 1 may be followed by wave 2) | bo@ops1 (pid 42) |');
  });

  it('writes self-contained HTML with every wave and host in the chart and all text escaped', () => {
    const html = reportHtml(buildReport(input));
    expect(html).not.toContain('<script');
    expect(html).toContain('exit 1: &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('p99 &lt;latency&gt;');
    for (const w of [1, 2, 3]) expect(html).toContain(`data-wave="${w}"`);
    for (const h of ['a1', 'b1', 'c1']) expect(html).toContain(`data-host="${h}"`);
    expect(html).not.toMatch(/(src|href)=/);
  });

  it('prints the audit trail: who created, ran, approved and rolled back, with outcomes between', () => {
    const a = auditTrail(records);
    expect(a.filter((e) => e.operator).map((e) => [e.action, e.user])).toEqual([
      ['create', 'ana'],
      ['run', 'ana'],
      ['approve', 'bo'],
      ['rollback', undefined],
    ]);
    const text = auditText(a);
    expect(text).toContain('2026-01-01 10:00:09Z  approve       bo@ops1 pid 42  wave 1 may be followed by wave 2');
    expect(text).toContain('rollback      (who: not recorded)');
    expect(text).toContain('→ rolled-back  reason: rolled back wave(s) 2');
  });
});

describe('audit trail with operator records', () => {
  it('lists each operator action once, with its reason, and what it caused as outcomes', () => {
    const recs = fixtureJournal('operator-abort.jsonl');
    const a = auditTrail(recs);
    expect(a.filter((e) => e.operator).map((e) => [e.action, e.user, e.reason])).toEqual([
      ['create', 'ana', undefined],
      ['run', 'ana', 'ticket OPS-7'],
      ['approve', 'bo', 'canary looks fine'],
      ['abort', 'ana', 'pager'],
    ]);
    expect(a.filter((e) => !e.operator).map((e) => e.action)).toEqual(['started', 'paused', 'approved', 'halted']);
  });
});
