/**
 * The engine end to end on the local transport, in process: halt on failure (maxFailures 0 and 1), resume runs
 * each completed step exactly once, rollback order, approval pause, plan mismatch, and a journal that can no
 * longer be written stopping the next side effect.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';

// A switch to make the journal's fsync fail like a full disk (set from a test, mid-run).
const disk = vi.hoisted(() => ({ full: false }));
vi.mock('node:fs', async (orig) => {
  const fs = await orig<typeof import('node:fs')>();
  // The journal flushes with the asynchronous fdatasync; a full disk fails it with ENOSPC.
  const fdatasync = (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    if (disk.full) return cb(Object.assign(new Error('ENOSPC: no space left on device, fdatasync'), { code: 'ENOSPC' }));
    return fs.fdatasync(fd, cb);
  };
  return { ...fs, fdatasync, default: { ...fs, fdatasync } };
});

const { approveRelease, resumeRelease, rollbackRelease, runRelease } = await import('../../src/app/run.js');
const { releaseStatus } = await import('../../src/app/status.js');
const { hostsYaml, tempDirs } = await import('../helpers/cli.js');
const { effectsRelease } = await import('../helpers/fixtures.js');
import type { EngineEvent } from '../../src/engine/events.js';

const temp = tempDirs('gw-engine-');

/** fixtures/playbooks/effects.yaml: steps s1..s3 append "<host> <step>" to effects.log; s2 fails (after printing) while fail-<host> exists. */
function setup(opts: { hosts?: number; waves?: string; extra?: string; undo?: boolean } = {}) {
  return effectsRelease(temp(), 'effects.yaml', {
    HOSTS: hostsYaml(opts.hosts ?? 4),
    WAVES: opts.waves ?? '{ canary: 1, size: 3, concurrency: 1 }',
    UNDO: opts.undo === false ? '# ' : '',
    EXTRA: opts.extra ?? '',
  });
}

const hosts = (n: number) => Array.from({ length: n }, (_, i) => `h-${String(i + 1).padStart(2, '0')}`);

describe('halt on failure', () => {
  it('maxFailures 0: the wave stops at the first failure, the failure shows its output, resume finishes each step once', async () => {
    const t = setup();
    t.fail('h-03');
    expect(await runRelease(t.req)).toBe(1);
    const failed = t.events.find((e) => e.event === 'step.failed') as Extract<EngineEvent, { event: 'step.failed' }>;
    expect(failed).toMatchObject({ release: 'eng', wave: 2, host: 'h-03', step: 's2', error: 'command failed (exit 7)' });
    expect(failed.output).toEqual(expect.arrayContaining(['first-line', 'disk on fire']));
    expect(typeof failed.ms).toBe('number');
    const halted = t.events.find((e) => e.event === 'run.halted') as Extract<EngineEvent, { event: 'run.halted' }>;
    expect(halted.reason).toMatch(/wave 2: 1 host\(s\) failed \(h-03\), more than maxFailures 0/);
    // concurrency 1: h-04 (after h-03 in wave 2) never started; wave 1 and h-02 are complete.
    expect(t.events.some((e) => e.event === 'step.start' && e.host === 'h-04')).toBe(false);
    expect(t.effects()).toEqual(['h-01 s1', 'h-01 s2', 'h-01 s3', 'h-02 s1', 'h-02 s2', 'h-02 s3', 'h-03 s1']);
    expect(readFileSync(join(t.dir, '.graywave/eng/logs/h-03.log'), 'utf8')).toContain('disk on fire');
    const st = await releaseStatus(t.req.file);
    expect(st.status).toBe('halted');
    expect(st.waves[1]!.hosts.find((h) => h.host === 'h-03')).toMatchObject({ status: 'failed', step: 's2', stepPhase: 'failed' });

    // Still failing: resume halts again at the same step without repeating s1.
    expect(await resumeRelease(t.req)).toBe(1);
    expect(t.count('h-03 s1')).toBe(1);

    t.fail('h-03', false);
    t.events.length = 0;
    expect(await resumeRelease(t.req)).toBe(0);
    for (const h of hosts(4)) for (const s of ['s1', 's2', 's3']) expect(t.count(`${h} ${s}`), `${h} ${s}`).toBe(1);
    // Resume restarted h-03 at s2, not at s1.
    expect(t.events.filter((e) => e.event === 'step.start' && e.host === 'h-03').map((e) => (e as { step: string }).step)).toEqual(['s2', 's3']);
    expect((await releaseStatus(t.req.file)).status).toBe('done');
    // Running again a finished release is refused (exit 2, issue #21) and does nothing; --again would run it.
    await expect(runRelease(t.req)).rejects.toMatchObject({
      exitCode: 2,
      message: 'release eng 3.0 is already done (its journal says so): not running it again',
    });
    expect(t.effects().length).toBe(12);
  });

  it('maxFailures 1: one failed host does not stop the wave or the release, but the run ends halted; two do stop it', async () => {
    const t = setup({ hosts: 7, waves: '{ canary: 1, size: 3, concurrency: 2, maxFailures: 1 }' });
    t.fail('h-03');
    expect(await runRelease(t.req)).toBe(1);
    const st = await releaseStatus(t.req.file);
    expect(st.waves.map((w) => w.hosts.map((h) => h.status))).toEqual([['done'], ['done', 'failed', 'done'], ['done', 'done', 'done']]);
    const halted = t.events.find((e) => e.event === 'run.halted') as Extract<EngineEvent, { event: 'run.halted' }>;
    expect(halted.reason).toMatch(/1 host\(s\) did not complete: h-03/);

    const u = setup({ hosts: 7, waves: '{ canary: 1, size: 3, concurrency: 3, maxFailures: 1 }' });
    u.fail('h-02');
    u.fail('h-04');
    expect(await runRelease(u.req)).toBe(1);
    expect((u.events.find((e) => e.event === 'run.halted') as { reason: string }).reason).toMatch(/wave 2: 2 host\(s\) failed \(.*\), more than maxFailures 1/);
    expect(u.events.some((e) => e.event === 'wave.start' && e.wave === 3)).toBe(false);
    u.fail('h-02', false);
    u.fail('h-04', false);
    expect(await resumeRelease(u.req)).toBe(0);
    for (const h of hosts(7)) for (const s of ['s1', 's2', 's3']) expect(u.count(`${h} ${s}`), `${h} ${s}`).toBe(1);
  });
});

describe('rollback', () => {
  it('undoes the current wave in reverse step order, reports steps without undo as skipped; --all goes newest wave first', async () => {
    const t = setup({ hosts: 4, waves: '{ canary: 1, size: 3, concurrency: 1 }' });
    t.fail('h-03');
    expect(await runRelease(t.req)).toBe(1);
    t.events.length = 0;
    expect(await rollbackRelease({ ...t.req })).toBe(0);
    // Wave 2 only: h-02 completed everything (s3, s1 undone; s2 has no undo), h-03 only s1 (s2 failed).
    const undoLog = () => readFileSync(join(t.dir, 'undo.log'), 'utf8').trim().split('\n');
    expect(undoLog()).toEqual(['h-02 undo-s3', 'h-02 undo-s1', 'h-03 undo-s1']);
    const skipped = t.events
      .filter((e) => e.event === 'undo.skipped')
      .map((e) => `${(e as { host: string }).host} ${(e as { step: string }).step} ${(e as { reason: string }).reason}`);
    expect(skipped).toHaveLength(2);
    expect(skipped[0]).toBe('h-02 s2 no undo defined');
    expect(skipped[1]).toMatch(/^h-03 s2 (no undo defined|step had failed)$/);
    const st = await releaseStatus(t.req.file);
    expect(st.status).toBe('rolled-back');
    expect(st.waves[0]!.hosts[0]!.status).toBe('done');
    expect(st.waves[1]!.hosts.map((h) => h.status)).toEqual(['rolled-back', 'rolled-back', 'pending']);

    // --all: what is left (wave 1) is undone too; nothing is undone twice.
    t.events.length = 0;
    expect(await rollbackRelease({ ...t.req, all: true })).toBe(0);
    expect(undoLog()).toEqual(['h-02 undo-s3', 'h-02 undo-s1', 'h-03 undo-s1', 'h-01 undo-s3', 'h-01 undo-s1']);
  });

  it('--all undoes every wave, newest first', async () => {
    const t = setup({ hosts: 5, waves: '{ canary: 1, size: 2, concurrency: 1 }' });
    t.fail('h-05');
    expect(await runRelease(t.req)).toBe(1);
    expect(await rollbackRelease({ ...t.req, all: true })).toBe(0);
    const lines = readFileSync(join(t.dir, 'undo.log'), 'utf8').trim().split('\n');
    expect(lines).toEqual([
      'h-04 undo-s3',
      'h-04 undo-s1',
      'h-05 undo-s1',
      'h-02 undo-s3',
      'h-02 undo-s1',
      'h-03 undo-s3',
      'h-03 undo-s1',
      'h-01 undo-s3',
      'h-01 undo-s1',
    ]);
    const st = await releaseStatus(t.req.file);
    expect(st.waves.flatMap((w) => w.hosts.map((h) => h.status))).toEqual(Array(5).fill('rolled-back'));
    // Waves 1 and 2 had passed their checks; rolled back, they are no longer verified (their hosts run the old release).
    expect(st.waves.map((w) => [w.index, w.status, w.verified])).toEqual([
      [1, 'rolled-back', false],
      [2, 'rolled-back', false],
      [3, 'rolled-back', false],
    ]);
  });
});

describe('approval pause', () => {
  it('off a terminal, pause: approve ends the run with exit 4 after each wave until approved', async () => {
    const t = setup({ hosts: 3, waves: '{ canary: 1, size: 1, concurrency: 1, pause: approve }' });
    expect(await runRelease(t.req)).toBe(4);
    expect(t.effects()).toEqual(['h-01 s1', 'h-01 s2', 'h-01 s3']);
    const paused = await releaseStatus(t.req.file);
    expect(paused.status).toBe('paused');
    // What `graywave approve` would approve, as for a train (status --json `pending`).
    expect(paused.pending).toEqual([{ wave: 1, detail: expect.stringMatching(/approv/) }]);
    expect(t.events.find((e) => e.event === 'run.paused')).toMatchObject({ wave: 1 });
    // Resuming without approval pauses again and runs nothing.
    expect(await resumeRelease(t.req)).toBe(4);
    expect(t.effects().length).toBe(3);
    expect(await approveRelease({ file: t.req.file, yes: true })).toEqual({ code: 0, wave: 1 });
    // Approved and not resumed yet: nothing waits for a person.
    expect((await releaseStatus(t.req.file)).pending).toBeUndefined();
    expect(await resumeRelease(t.req)).toBe(4);
    expect(t.effects().length).toBe(6);
    expect((await releaseStatus(t.req.file)).pending).toEqual([{ wave: 2, detail: expect.stringMatching(/approv/) }]);
    expect((await approveRelease({ file: t.req.file, yes: true })).wave).toBe(2);
    expect(await resumeRelease(t.req)).toBe(0);
    for (const h of hosts(3)) for (const s of ['s1', 's2', 's3']) expect(t.count(`${h} ${s}`)).toBe(1);
    // Done: no wave waits (the last wave has none after it), so there is nothing to approve.
    await expect(approveRelease({ file: t.req.file, yes: true })).rejects.toThrow(/no finished wave of eng waits for approval \(the release is done\)/);
  });
});

describe('Ctrl-C during a verify check', () => {
  it('halts as an interrupt: the check is not a failed gate, so onFailure (rollback-wave) does not run; resume re-runs it', async () => {
    const t = setup({
      hosts: 2,
      waves: '{ size: 1 }',
      extra: 'onFailure: rollback-wave\nverify:\n  - name: slow\n    run: "if [ -e slow ]; then touch gate-started; sleep 20; fi"',
    });
    writeFileSync(join(t.dir, 'slow'), '');
    const ctl = new AbortController();
    const outcome = runRelease({ ...t.req, signal: ctl.signal });
    await vi.waitFor(() => expect(existsSync(join(t.dir, 'gate-started'))).toBe(true), { timeout: 15_000, interval: 20 });
    ctl.abort(new Error('interrupted (Ctrl-C)'));
    expect(await outcome).toBe(1);
    const halted = t.events.find((e) => e.event === 'run.halted') as Extract<EngineEvent, { event: 'run.halted' }>;
    expect(halted.reason).toBe('interrupted (Ctrl-C)');
    expect(t.events.some((e) => e.event === 'verify.failed' || e.event.startsWith('undo.') || e.event.startsWith('rollback.'))).toBe(false);
    expect(existsSync(join(t.dir, 'undo.log'))).toBe(false);
    const st = await releaseStatus(t.req.file);
    expect(st).toMatchObject({ status: 'halted', reason: 'interrupted (Ctrl-C)' });
    rmSync(join(t.dir, 'slow'));
    expect(await resumeRelease(t.req)).toBe(0);
    for (const h of hosts(2)) for (const s of ['s1', 's2', 's3']) expect(t.count(`${h} ${s}`)).toBe(1);
  });
});

describe('a gate that cannot be measured', () => {
  it('is an error, not a failed gate: measured errorLimit times, then the release halts and onFailure (rollback-wave) does not run', async () => {
    // Nothing listens on port 1: every query fails, so the gate measures nothing (monitor down).
    const t = setup({
      hosts: 2,
      waves: '{ size: 1 }',
      extra:
        'onFailure: rollback-wave\nproviders:\n  prom: { type: prometheus, url: "http://127.0.0.1:1" }\nverify:\n  - name: error-rate\n    errorLimit: 2\n    query: { monitor: prom, expr: "up", max: 1 }',
    });
    expect(await runRelease(t.req)).toBe(1);
    const halted = t.events.find((e) => e.event === 'run.halted') as Extract<EngineEvent, { event: 'run.halted' }>;
    expect(halted.reason).toMatch(/^verification could not be measured after wave 1: error-rate: unknown value \(.*\) after 1 poll \(2 consecutive errors\)$/);
    expect(halted.hint).toMatch(/nothing was rolled back/);
    expect(t.events.some((e) => e.event.startsWith('undo.') || e.event.startsWith('rollback.'))).toBe(false);
    expect(existsSync(join(t.dir, 'undo.log'))).toBe(false);
    expect(t.effects()).toEqual(['h-01 s1', 'h-01 s2', 'h-01 s3']);
    const st = await releaseStatus(t.req.file);
    expect(st.status).toBe('halted');
  });

  it('a failed gate still applies onFailure (rollback-wave)', async () => {
    const t = setup({ hosts: 2, waves: '{ size: 1 }', extra: 'onFailure: rollback-wave\nverify:\n  - name: smoke\n    run: "exit 3"' });
    expect(await runRelease(t.req)).toBe(1);
    const halted = t.events.find((e) => e.event === 'run.halted') as Extract<EngineEvent, { event: 'run.halted' }>;
    expect(halted.reason).toBe('verification failed after wave 1: smoke: exit 3; hosts rolled back (rollback-wave)');
    expect(readFileSync(join(t.dir, 'undo.log'), 'utf8').trim().split('\n')).toEqual(['h-01 undo-s3', 'h-01 undo-s1']);
  });
});

describe('switchover steps', () => {
  it('honour their timeout like every step: a hung switchover step fails after it and the release halts', async () => {
    const t = setup({ hosts: 2, waves: '{ size: 1 }', extra: 'switchover:\n  at: 50%\n  steps:\n    - name: flip\n      timeout: 1s\n      run: "sleep 30"' });
    const t0 = Date.now();
    expect(await runRelease(t.req)).toBe(1);
    expect(Date.now() - t0).toBeLessThan(20_000);
    const halted = t.events.find((e) => e.event === 'run.halted') as Extract<EngineEvent, { event: 'run.halted' }>;
    expect(halted.reason).toMatch(/^switchover step flip failed: .*timed out/);
  });

  it('stop at Ctrl-C', async () => {
    const t = setup({
      hosts: 2,
      waves: '{ size: 1 }',
      extra: 'switchover:\n  at: 50%\n  steps:\n    - name: flip\n      timeout: 10m\n      run: "touch flip-started; sleep 30"',
    });
    const ctl = new AbortController();
    const outcome = runRelease({ ...t.req, signal: ctl.signal });
    await vi.waitFor(() => expect(existsSync(join(t.dir, 'flip-started'))).toBe(true), { timeout: 15_000, interval: 20 });
    const t0 = Date.now();
    ctl.abort(new Error('interrupted (Ctrl-C)'));
    expect(await outcome).toBe(1);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const halted = t.events.find((e) => e.event === 'run.halted') as Extract<EngineEvent, { event: 'run.halted' }>;
    expect(halted.reason).toBe('switchover step flip failed: interrupted (Ctrl-C)');
  });
});

describe('journal for a different playbook', () => {
  it('is refused with a clear message unless --force', async () => {
    const t = setup({ hosts: 2 });
    t.fail('h-02');
    expect(await runRelease(t.req)).toBe(1);
    writeFileSync(t.req.file, readFileSync(t.req.file, 'utf8').replace('version: "3.0"', 'version: "3.1"'));
    await expect(resumeRelease(t.req)).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringMatching(/written for a different playbook \(version 3\.0.*now version 3\.1.*\): hosts, steps or version changed/),
    });
    await expect(runRelease(t.req)).rejects.toMatchObject({ exitCode: 2 });
    t.fail('h-02', false);
    expect(await resumeRelease({ ...t.req, force: true })).toBe(0);
  });
});

describe('a journal that cannot be written', () => {
  it('stops the release before the next side effect (disk full on fsync)', async () => {
    const t = setup({ hosts: 2, waves: '{ size: 1, concurrency: 1 }' });
    let tripped = false;
    const req = {
      ...t.req,
      onEvent: (e: EngineEvent) => {
        t.events.push(e);
        if (e.event === 'step.done' && e.host === 'h-01' && e.step === 's1') ((disk.full = true), (tripped = true));
      },
    };
    try {
      expect(await runRelease(req)).toBe(1);
    } finally {
      disk.full = false;
    }
    expect(tripped).toBe(true);
    // s1 ran; s2 needed its `started` record on disk first, which failed: it never ran.
    expect(t.effects()).toEqual(['h-01 s1']);
    const halted = t.events.find((e) => e.event === 'run.halted') as { reason: string };
    expect(halted.reason).toMatch(/cannot be written \(ENOSPC\).*no further side effect/);
    // Space is back: resume carries on from s2, s1 is not repeated.
    rmSync(join(t.dir, '.graywave/eng/lock'), { force: true });
    expect(await resumeRelease(t.req)).toBe(0);
    for (const h of hosts(2)) for (const s of ['s1', 's2', 's3']) expect(t.count(`${h} ${s}`)).toBe(1);
  });
});
