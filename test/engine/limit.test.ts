/**
 * `--limit` against the journal, in process: a wave completed by several --limit runs gets its checkpoint (checks,
 * approval) exactly once, in order, before anything later runs or the release is done; a later --limit run does not
 * pass a wave that waits for approval; a rollback of some hosts and their second run checks the wave again; a crash
 * between a wave's last host and its checks is caught up by the next (limited) run; a rolling release under --limit
 * runs only the chosen hosts. LIMITED is a state of the journal (run phase `limited`, event `run.limited`), and
 * journals written before it (a `halted` record with a `--limit:` reason) still read as limited.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { approveRelease, resumeRelease, rollbackRelease, runRelease, waitForRelease } from '../../src/app/run.js';
import { releaseStatus } from '../../src/app/status.js';
import type { EngineEvent } from '../../src/engine/events.js';
import type { JournalRecord } from '../../src/journal/records.js';
import { buildReport } from '../../src/report/model.js';
import { hostsYaml, tempDirs } from '../helpers/cli.js';
import { effectsRelease } from '../helpers/fixtures.js';

const temp = tempDirs('gw-limit-');

/** A check after each wave: its effect is `smoke <wave>` in effects.log. */
const SMOKE = 'verify:\n  - name: smoke\n    run: "echo smoke {{wave}} >> effects.log"\n';

/** fixtures/playbooks/effects.yaml (steps s1..s3 append "<host> <step>" to effects.log) with the smoke check. */
function setup(hosts: number, waves: string) {
  const t = effectsRelease(temp(), 'effects.yaml', { HOSTS: hostsYaml(hosts), WAVES: waves, UNDO: '', EXTRA: SMOKE });
  const smokes = () => t.effects().filter((l) => l.startsWith('smoke'));
  const journalFile = join(t.dir, '.graywave/eng/journal.jsonl');
  const journal = () =>
    readFileSync(journalFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as JournalRecord);
  const limited = (limit: string) => ({ ...t.req, limit });
  const approve = () => approveRelease({ file: t.req.file, yes: true });
  return { ...t, smokes, journal, journalFile, limited, approve };
}

const EXIT_OK = 0;
const EXIT_PAUSED = 4;
const waitsForApproval = (records: JournalRecord[], wave: number) => records.filter((r) => r.type === 'wave' && r.wave === wave && r.phase === 'paused').length;

describe('--limit and the checkpoints of the waves', () => {
  it('a wave completed by a second --limit run gets its checks and its approval exactly once; a --limit run never passes a wave that waits for approval', async () => {
    // Waves: [h-01] [h-02 h-03] [h-04 h-05]; an approval after each wave (off a terminal: exit 4 until `approve`).
    const t = setup(5, '{ canary: 1, size: 2, concurrency: 1, pause: approve }');
    expect(await runRelease(t.limited('h-01'))).toBe(EXIT_PAUSED);
    expect(t.smokes()).toEqual(['smoke 1']);
    // Wave 1 waits for approval: a --limit run of a wave-2 host stops there too, and runs nothing.
    expect(await resumeRelease(t.limited('h-02'))).toBe(EXIT_PAUSED);
    expect(t.count('h-02 s1')).toBe(0);
    await t.approve();
    // h-02 alone cuts wave 2: no checks, no approval yet.
    expect(await resumeRelease(t.limited('h-02'))).toBe(EXIT_OK);
    expect(t.smokes()).toEqual(['smoke 1']);
    expect(waitsForApproval(t.journal(), 2)).toBe(0);
    // h-03 completes wave 2: its checks run, then the approval after it is asked (the run stops there).
    expect(await resumeRelease(t.limited('h-03'))).toBe(EXIT_PAUSED);
    expect(t.smokes()).toEqual(['smoke 1', 'smoke 2']);
    expect(waitsForApproval(t.journal(), 2)).toBe(1);
    await t.approve();
    // Nothing left in the limit: wave 2 is not checked or asked about again; wave 3 is still pending.
    expect(await resumeRelease(t.limited('h-03'))).toBe(EXIT_OK);
    expect(t.count('h-04 s1')).toBe(0);
    expect(await resumeRelease(t.req)).toBe(EXIT_OK);
    expect(t.smokes()).toEqual(['smoke 1', 'smoke 2', 'smoke 3']);
    expect(waitsForApproval(t.journal(), 2)).toBe(1);
    for (let i = 1; i <= 5; i++) expect(t.count(`h-0${i} s3`)).toBe(1);
    expect((await releaseStatus(t.req.file)).status).toBe('done');
  });

  it('a --limit run over two waves: a whole wave after a cut one runs its checks, but its approval waits until the cut wave has passed its checkpoint', async () => {
    // Waves: [h-01] [h-02 h-03] [h-04 h-05] [h-06].
    const t = setup(6, '{ canary: 1, size: 2, concurrency: 1, pause: approve }');
    // Wave 1 is left out, wave 2 cut (h-03 only), wave 3 whole: its checks run, nothing is asked.
    expect(await runRelease(t.limited('h-03,h-04,h-05'))).toBe(EXIT_OK);
    expect(t.smokes()).toEqual(['smoke 3']);
    expect(t.events.some((e) => e.event === 'run.paused')).toBe(false);
    // The rest, in order: wave 1 and its approval, wave 2 and its approval, then wave 3's approval (its checks had
    // passed), then wave 4.
    const pausedAt: number[] = [];
    for (;;) {
      t.events.length = 0;
      const code = await resumeRelease(t.req);
      const paused = t.events.find((e) => e.event === 'run.paused');
      if (code !== EXIT_PAUSED) {
        expect(code).toBe(EXIT_OK);
        break;
      }
      pausedAt.push((paused as { wave: number }).wave);
      await t.approve();
    }
    expect(pausedAt).toEqual([1, 2, 3]);
    expect(t.smokes()).toEqual(['smoke 3', 'smoke 1', 'smoke 2', 'smoke 4']);
    expect((await releaseStatus(t.req.file)).status).toBe('done');
  });

  it('hosts rolled back with --limit and run again: their wave is checked again', async () => {
    const t = setup(3, '{ canary: 1, size: 2, concurrency: 1 }');
    expect(await runRelease(t.req)).toBe(EXIT_OK);
    expect(t.smokes()).toEqual(['smoke 1', 'smoke 2']);
    expect(await rollbackRelease({ ...t.limited('h-03') })).toBe(EXIT_OK);
    expect(await resumeRelease(t.limited('h-03'))).toBe(EXIT_OK);
    expect(t.count('h-03 s1')).toBe(2);
    expect(t.smokes()).toEqual(['smoke 1', 'smoke 2', 'smoke 2']);
    expect((await releaseStatus(t.req.file)).status).toBe('done');
  });

  it('a crash after the last host of a wave, before its checks: the next --limit run runs them before any later host', async () => {
    // Waves: [h-01] [h-02 h-03] [h-04 h-05].
    const t = setup(5, '{ canary: 1, size: 2, concurrency: 1 }');
    expect(await runRelease(t.limited('h-01,h-02,h-03'))).toBe(EXIT_OK);
    expect(t.smokes()).toEqual(['smoke 1', 'smoke 2']);
    // What a kill -9 right after h-03's last step leaves: the journal ends with that step's record.
    const records = t.journal();
    const last = records.map((r) => r.type === 'step' && r.host === 'h-03' && r.phase === 'done').lastIndexOf(true);
    writeFileSync(
      t.journalFile,
      records
        .slice(0, last + 1)
        .map((r) => JSON.stringify(r) + '\n')
        .join(''),
    );
    expect((await releaseStatus(t.req.file)).waves[1]).toMatchObject({ status: 'verifying', verified: false });

    expect(await resumeRelease(t.limited('h-04'))).toBe(EXIT_OK);
    const after = t.journal();
    const verified = after.findIndex((r) => r.type === 'wave' && r.wave === 2 && r.phase === 'verified');
    const h04 = after.findIndex((r) => r.type === 'step' && r.host === 'h-04');
    expect(verified).toBeGreaterThan(last);
    expect(h04).toBeGreaterThan(verified);
    expect(t.smokes()).toEqual(['smoke 1', 'smoke 2', 'smoke 2']);
    // h-05 finishes the release: wave 3's checks run, once.
    expect(await resumeRelease(t.limited('h-05'))).toBe(EXIT_OK);
    expect(t.smokes()).toEqual(['smoke 1', 'smoke 2', 'smoke 2', 'smoke 3']);
    expect((await releaseStatus(t.req.file)).status).toBe('done');
  });

  it('a crash in the middle of a --limit run: status says to resume with the same --limit (a plain resume would take the whole fleet), which goes on where it stopped', async () => {
    // Waves: [h-01] [h-02 h-03].
    const t = setup(3, '{ canary: 1, size: 2, concurrency: 1 }');
    expect(await runRelease(t.limited('h-01,h-02'))).toBe(EXIT_OK);
    const records = t.journal();
    expect(records.find((r) => r.type === 'run' && r.phase === 'start')).toMatchObject({ limit: ['h-01', 'h-02'] });
    // What a kill -9 during h-02's s2 leaves: the journal ends with s2 started.
    const cut = records.findIndex((r) => r.type === 'step' && r.host === 'h-02' && r.step === 's2' && r.phase === 'started');
    writeFileSync(
      t.journalFile,
      records
        .slice(0, cut + 1)
        .map((r) => JSON.stringify(r) + '\n')
        .join(''),
    );
    const st = await releaseStatus(t.req.file);
    expect(st.status).toBe('interrupted');
    expect(st.reason).toContain(
      `it ran with --limit (2 host(s)): \`graywave resume ${t.req.file} --limit h-01,h-02\` goes on with those hosts only; a resume without --limit goes on with the whole fleet`,
    );
    t.events.length = 0;
    expect(await resumeRelease(t.limited('h-01,h-02'))).toBe(EXIT_OK);
    // h-02 from the step in flight; h-01 (done) and h-03 (outside the limit) not at all.
    expect(t.events.filter((e) => e.event === 'step.start').map((e) => `${(e as { host: string }).host} ${(e as { step: string }).step}`)).toEqual([
      'h-02 s2',
      'h-02 s3',
    ]);
    expect(t.count('h-03 s1')).toBe(0);
    expect((await releaseStatus(t.req.file)).status).toBe('limited');
  });

  it('the watch checks run on the hosts of a cut wave too: a failing one halts the --limit run', async () => {
    const t = effectsRelease(temp(), 'effects-gated.yaml', {
      HOSTS: hostsYaml(3),
      WAVES: '{ canary: 1, size: 2, concurrency: 1 }',
      S1_CMD: 'sleep 5',
      EXTRA: 'watch:\n  - { name: error-rate, run: "test ! -e errors-high", interval: 200ms }',
    });
    writeFileSync(join(t.dir, 'errors-high'), '');
    // Wave 2 ([h-02 h-03]) is cut: h-02 alone runs, watched; the watch stops its 5 s step (s1 never writes its line).
    expect(await runRelease({ ...t.req, limit: 'h-02' })).toBe(1);
    expect(t.effects()).toEqual([]);
    const halted = t.events.find((e) => e.event === 'run.halted') as Extract<EngineEvent, { event: 'run.halted' }>;
    expect(halted.reason).toMatch(/watch error-rate/);
    expect((await releaseStatus(t.req.file)).status).toBe('halted');
  });

  it('a rolling release under --limit runs only the chosen hosts (wave by wave), the rest stays pending', async () => {
    const t = setup(4, '{ mode: rolling, inFlight: 3, every: 25% }');
    expect(await runRelease(t.limited('h-02'))).toBe(EXIT_OK);
    expect(t.effects().filter((l) => !l.startsWith('smoke'))).toEqual(['h-02 s1', 'h-02 s2', 'h-02 s3']);
    const st = await releaseStatus(t.req.file);
    expect(st.waves.flatMap((w) => w.hosts.filter((h) => h.status === 'pending').map((h) => h.host))).toEqual(['h-01', 'h-03', 'h-04']);
  });
});

describe('LIMITED in the journal', () => {
  it('a --limit run that finished its hosts records phase limited and emits run.limited (never run.halted); status, status --wait (0) and the report read it', async () => {
    // Waves: [h-01] [h-02 h-03] [h-04 h-05].
    const t = setup(5, '{ canary: 1, size: 2, concurrency: 1 }');
    expect(await runRelease(t.limited('h-01,h-02'))).toBe(EXIT_OK);
    const runs = t.journal().filter((r) => r.type === 'run');
    expect(runs.at(-1)).toMatchObject({ phase: 'limited', reason: '--limit: 2 host(s) done; 3 host(s) outside the limit still pending: h-03, h-04, h-05' });
    expect(t.events.some((e) => e.event === 'run.halted')).toBe(false);
    const limited = t.events.filter((e): e is Extract<EngineEvent, { event: 'run.limited' }> => e.event === 'run.limited');
    expect(limited).toHaveLength(1);
    expect(limited[0]).toMatchObject({ release: 'eng', done: 2, pending: 3 });
    expect(limited[0]!.hint).toMatch(
      /^graywave resume .*pb\.yaml runs the 3 pending hosts \(h-03, h-04, h-05\), then the checks of wave 2 \(--limit covered part of it\)$/,
    );
    const st = await releaseStatus(t.req.file);
    expect(st.status).toBe('limited');
    expect(st.limited).toMatchObject({
      done: ['h-01', 'h-02'],
      pending: ['h-03', 'h-04', 'h-05'],
      partialWaves: [{ wave: 2, done: ['h-02'], pending: ['h-03'] }],
    });
    expect(await waitForRelease({ file: t.req.file, timeoutMs: 1000, pollMs: 50 })).toBe(EXIT_OK);
    const report = buildReport({
      records: t.journal(),
      waves: st.waves.map((w) => ({ index: w.index, hosts: w.hosts.map((h) => h.host) })),
      steps: ['s1', 's2', 's3'].map((name) => ({ name, action: 'run' })),
    });
    expect(report.status).toBe('limited');
    expect(report.failures).toEqual([]);
    // A halt is still a halt: a --limit host that fails halts the release (exit 1), status halted.
    t.fail('h-03');
    expect(await resumeRelease(t.limited('h-03'))).toBe(1);
    expect((await releaseStatus(t.req.file)).status).toBe('halted');
    expect(await waitForRelease({ file: t.req.file, timeoutMs: 1000, pollMs: 50 })).toBe(1);
  });

  it('a journal written before the limited phase (halted, reason "--limit: …") still reads as limited, and resume finishes it', async () => {
    const t = setup(3, '{ canary: 1, size: 2, concurrency: 1 }');
    expect(await runRelease(t.limited('h-01,h-02'))).toBe(EXIT_OK);
    // What the engine wrote before: the same record as `halted`.
    const old = t.journal().map((r) => (r.type === 'run' && r.phase === 'limited' ? { ...r, phase: 'halted' as const } : r));
    writeFileSync(t.journalFile, old.map((r) => JSON.stringify(r) + '\n').join(''));
    const st = await releaseStatus(t.req.file);
    expect(st.status).toBe('limited');
    expect(st.limited?.pending).toEqual(['h-03']);
    expect(await waitForRelease({ file: t.req.file, timeoutMs: 1000, pollMs: 50 })).toBe(EXIT_OK);
    expect(buildReport({ records: old, waves: st.waves.map((w) => ({ index: w.index, hosts: w.hosts.map((h) => h.host) })), steps: [] }).failures).toEqual([]);
    expect(await resumeRelease(t.req)).toBe(EXIT_OK);
    expect(t.smokes()).toEqual(['smoke 1', 'smoke 2']);
    expect((await releaseStatus(t.req.file)).status).toBe('done');
  });
});
