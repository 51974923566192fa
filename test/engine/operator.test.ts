import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { controlRelease, resumeRelease, rollbackRelease, runRelease, waitForRelease } from '../../src/app/run.js';
import { releaseStatus } from '../../src/app/status.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { readJournal } from '../../src/journal/journal.js';
import { auditText, auditTrail } from '../../src/report/audit.js';
import { hostsYaml, tempDirs } from '../helpers/cli.js';
import { effectsRelease } from '../helpers/fixtures.js';
import { shellWaitForFile, waitFor } from '../helpers/wait.js';

const temp = tempDirs('gw-operator-');

/**
 * fixtures/playbooks/effects-gated.yaml: hosts append "<host> <step>" to effects.log; the gate fails while
 * `gate-fails` exists. `stepCmd` runs before s1's effect (to make steps slow).
 */
function setup(opts: { hosts?: number; waves?: string; extra?: string; stepCmd?: string } = {}) {
  const t = effectsRelease(temp(), 'effects-gated.yaml', {
    HOSTS: hostsYaml(opts.hosts ?? 4),
    WAVES: opts.waves ?? '{ canary: 1, size: 3, concurrency: 2 }',
    S1_CMD: opts.stepCmd ?? 'true',
    EXTRA: opts.extra ?? '',
  });
  const records = () => readJournal(join(t.dir, '.graywave/ops/journal.jsonl')).records;
  return { ...t, records };
}

describe('abort from another process', () => {
  it('a running release stops at the next step boundary, records who and why, and resume finishes', async () => {
    // s1 holds every host until the test writes `go`.
    const t = setup({ waves: '{ size: 1, concurrency: 1 }', stepCmd: shellWaitForFile('go') });
    const running = runRelease(t.req);
    // Wait until the first host is in flight, then send the abort as another process would.
    await waitFor(() => t.events.some((e) => e.event === 'step.start'), 'the first host in flight', { everyMs: 20 });
    const sent = await controlRelease({ file: t.req.file, action: 'abort', reason: 'error budget' });
    expect(sent.message).toMatch(/sent to the running release/);
    // Once the engine has taken the request in (it journals it), the step in flight may end.
    await waitFor(() => t.records().some((r) => r.type === 'operator' && r.action === 'abort'), 'the running release to journal the abort');
    writeFileSync(join(t.dir, 'go'), '');
    expect(await running).toBe(1);
    const halted = t.events.find((e) => e.event === 'run.halted') as Extract<EngineEvent, { event: 'run.halted' }>;
    expect(halted.reason).toMatch(/aborted by .*: error budget/);
    // Only the host in flight ran s1: nothing started after the request was taken in.
    expect(t.effects().filter((l) => l.endsWith(' s1'))).toEqual(['h-01 s1']);
    expect(t.records().some((r) => r.type === 'operator' && r.action === 'abort' && r.reason === 'error budget')).toBe(true);
    expect(await resumeRelease(t.req)).toBe(0);
    for (const h of ['h-01', 'h-02', 'h-03', 'h-04']) expect(t.effects().filter((l) => l === `${h} s1`)).toHaveLength(1);
  });

  it('without a running release, abort marks it halted in the journal', async () => {
    const t = setup();
    writeFileSync(join(t.dir, 'gate-fails'), '');
    expect(await runRelease(t.req)).toBe(1);
    const r = await controlRelease({ file: t.req.file, action: 'abort', reason: 'stop it' });
    expect(r.code).toBe(0);
    expect((await releaseStatus(t.req.file)).reason).toMatch(/aborted by .*: stop it/);
  });
});

describe('promote', () => {
  it('--skip-gate passes the failed gate of a halted release with a recorded reason; resume continues', async () => {
    const t = setup();
    writeFileSync(join(t.dir, 'gate-fails'), '');
    expect(await runRelease(t.req)).toBe(1);
    expect(t.events.some((e) => e.event === 'verify.failed' && e.wave === 1)).toBe(true);
    await controlRelease({ file: t.req.file, action: 'promote', mode: 'gate', reason: 'checked by hand' });
    // The gate still fails for wave 1's re-check — but wave 1 is already verified, so wave 2 runs; its own gate then fails.
    expect(await resumeRelease(t.req)).toBe(1);
    const st = await releaseStatus(t.req.file);
    expect(st.waves[0]!.verified).toBe(true);
    expect(st.waves[1]!.hosts.every((h) => h.status === 'done')).toBe(true);
    expect(st.waves[1]!.verified).toBe(false);
    expect(t.records().some((r) => r.type === 'operator' && r.action === 'promote' && r.detail === 'gate' && r.reason === 'checked by hand')).toBe(true);
  });

  it('--full passes every remaining gate: the release completes although the gate keeps failing', async () => {
    const t = setup();
    writeFileSync(join(t.dir, 'gate-fails'), '');
    expect(await runRelease(t.req)).toBe(1);
    await controlRelease({ file: t.req.file, action: 'promote', mode: 'full', reason: 'ship it' });
    expect(await resumeRelease(t.req)).toBe(0);
    expect(t.effects().filter((l) => l.endsWith(' s2'))).toHaveLength(4);
  });
});

describe('hotfix policy in the audit trail', () => {
  it("the run action carries the playbook's hotfix reason, marked hotfix", async () => {
    const t = setup({ extra: 'policy: hotfix\nreason: "INC-42: checkout down"' });
    expect(await runRelease(t.req)).toBe(0);
    const run = auditTrail(t.records()).find((e) => e.action === 'run');
    expect(run).toMatchObject({ operator: true, reason: 'INC-42: checkout down', detail: 'hotfix' });
    expect(auditText([run!])).toMatch(/run .*hotfix {2}reason: INC-42: checkout down$/);
  });
});

describe('onFailure: freeze', () => {
  it('halts without undoing anything, shows frozen, and rollback needs --force', async () => {
    const t = setup({ extra: 'onFailure: freeze' });
    writeFileSync(join(t.dir, 'gate-fails'), '');
    expect(await runRelease(t.req)).toBe(1);
    expect(t.effects().some((l) => l.includes('undo'))).toBe(false);
    const st = await releaseStatus(t.req.file);
    expect(st.status).toBe('frozen');
    await expect(rollbackRelease({ ...t.req, all: true })).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/frozen/) });
    expect(await rollbackRelease({ ...t.req, all: true, force: true })).toBe(0);
    expect(t.effects()).toContain('h-01 undo-s1');
  });
});

describe('rollback --fast', () => {
  it('undoes every touched host of every wave at once, each host still newest step first', async () => {
    const t = setup({ hosts: 6, waves: '{ size: 2, concurrency: 1 }' });
    expect(await runRelease(t.req)).toBe(0);
    expect(await rollbackRelease({ ...t.req, fast: true })).toBe(0);
    const undos = t.effects().filter((l) => l.includes('undo'));
    expect(undos).toHaveLength(12);
    for (let i = 1; i <= 6; i++) {
      const h = `h-0${i}`;
      expect(undos.indexOf(`${h} undo-s2`)).toBeLessThan(undos.indexOf(`${h} undo-s1`));
    }
    // All hosts at once: the first undo of every host comes before the last undo of any host.
    const firstUndos = [1, 2, 3, 4, 5, 6].map((i) => undos.indexOf(`h-0${i} undo-s2`));
    const lastUndos = [1, 2, 3, 4, 5, 6].map((i) => undos.indexOf(`h-0${i} undo-s1`));
    expect(Math.max(...firstUndos)).toBeLessThan(Math.max(...lastUndos));
    const st = await releaseStatus(t.req.file);
    expect(st.status).toBe('rolled-back');
  });
});

describe('status --wait', () => {
  it('returns 0 done, 1 halted, 4 paused, 5 on timeout', async () => {
    const done = setup();
    expect(await runRelease(done.req)).toBe(0);
    expect(await waitForRelease({ file: done.req.file, timeoutMs: 1000, pollMs: 50 })).toBe(0);

    const halted = setup();
    writeFileSync(join(halted.dir, 'gate-fails'), '');
    expect(await runRelease(halted.req)).toBe(1);
    expect(await waitForRelease({ file: halted.req.file, timeoutMs: 1000, pollMs: 50 })).toBe(1);

    const paused = setup({ waves: '{ canary: 1, size: 3, concurrency: 2, pause: approve }' });
    expect(await runRelease(paused.req)).toBe(4);
    expect(await waitForRelease({ file: paused.req.file, timeoutMs: 1000, pollMs: 50 })).toBe(4);

    const never = setup();
    const t0 = Date.now();
    expect(await waitForRelease({ file: never.req.file, timeoutMs: 300, pollMs: 50 })).toBe(5);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
  });
});

describe('status of a release whose process died (kill -9)', () => {
  it('says interrupted, with how to go on, and status --wait returns 1 at once instead of waiting; a live holder is still running', async () => {
    const t = setup();
    expect(await runRelease(t.req)).toBe(0);
    // Cut the journal back to just after the first step started: what a kill -9 there leaves.
    const journal = join(t.dir, '.graywave/ops/journal.jsonl');
    const lines = readFileSync(journal, 'utf8').split('\n');
    writeFileSync(journal, lines.slice(0, lines.findIndex((l) => l.includes('"phase":"started"') && l.includes('"type":"step"')) + 1).join('\n') + '\n');
    const lock = join(t.dir, '.graywave/ops/lock');
    const dead = spawnSync('true').pid!; // exited: its pid is free
    writeFileSync(lock, JSON.stringify({ user: 'ci', host: hostname(), pid: dead, startedAt: '2026-11-22T00:00:00.000Z', command: 'run' }));
    const st = await releaseStatus(t.req.file);
    expect(st.status).toBe('interrupted');
    expect(st.reason).toMatch(
      new RegExp(`pid ${dead} that ran it .* is no longer running: clear its lock with \`graywave unlock .*pb\\.yaml --force\`, then \`graywave resume`),
    );
    const t0 = Date.now();
    expect(await waitForRelease({ file: t.req.file, timeoutMs: 30_000, pollMs: 50 })).toBe(1);
    expect(Date.now() - t0).toBeLessThan(15_000); // generous: it did not sit out its 30 s

    // A live holder (this very process): really running, status --wait keeps waiting.
    writeFileSync(lock, JSON.stringify({ user: 'ci', host: hostname(), pid: process.pid, startedAt: '2026-11-22T00:00:00.000Z', command: 'run' }));
    expect((await releaseStatus(t.req.file)).status).toBe('running');
    expect(await waitForRelease({ file: t.req.file, timeoutMs: 300, pollMs: 50 })).toBe(5);

    // No lock at all (a cluster lock that died with its holder): interrupted, resume goes on.
    rmSync(lock);
    const gone = await releaseStatus(t.req.file);
    expect(gone.status).toBe('interrupted');
    expect(gone.reason).toMatch(/continue with `graywave resume /);
  });
});

describe('rolling window', () => {
  it('keeps inFlight hosts going across checkpoints, never more, gates at every checkpoint, canary first', async () => {
    const t = setup({
      hosts: 8,
      waves: '{ mode: rolling, inFlight: 3, every: 25%, canary: 1 }',
      stepCmd: 'sleep 0.$((RANDOM % 3 + 1))',
    });
    expect(await runRelease(t.req)).toBe(0);
    let inFlight = 0;
    let max = 0;
    let overlappedCheckpoint = false;
    const active = new Map<string, number>();
    let canaryDone = false;
    for (const e of t.events) {
      if (e.event === 'host.start') {
        if (e.host !== 'h-01') expect(canaryDone).toBe(true); // nothing starts before the canary's checkpoint
        active.set(e.host, e.wave);
        inFlight++;
        max = Math.max(max, inFlight);
        if ([...active.values()].some((w) => w !== e.wave)) overlappedCheckpoint = true;
      }
      if (e.event === 'host.done') (active.delete(e.host), inFlight--);
      if (e.event === 'verify.done' && e.wave === 1) canaryDone = true;
    }
    expect(max).toBeLessThanOrEqual(3);
    expect(max).toBe(3);
    expect(overlappedCheckpoint).toBe(true);
    expect(new Set(t.events.filter((e) => e.event === 'verify.done').map((e) => (e as { wave: number }).wave)).size).toBe(5);
  });

  it('a failing gate stops new hosts, lets the in-flight ones finish, and halts', async () => {
    // The first checkpoint's hosts (h-01, h-02) run through; the next ones hold s1 until the test writes `go`, so they
    // are surely in flight when the checkpoint's gate fails.
    const t = setup({
      hosts: 8,
      waves: '{ mode: rolling, inFlight: 2, every: 25% }',
      stepCmd: `case {{host.name}} in h-01|h-02) ;; *) ${shellWaitForFile('go')} ;; esac`,
    });
    writeFileSync(join(t.dir, 'gate-fails'), '');
    const running = runRelease(t.req);
    await waitFor(() => t.records().some((r) => r.type === 'gate' && !r.ok), "the first checkpoint's gate to fail");
    writeFileSync(join(t.dir, 'go'), '');
    expect(await running).toBe(1);
    // Every host that started finished its pipeline (none left between s1 and s2).
    const s1 = t.effects().filter((l) => l.endsWith(' s1')).length;
    const s2 = t.effects().filter((l) => l.endsWith(' s2')).length;
    expect(s1).toBe(s2);
    expect(s1).toBe(4); // the first checkpoint's two, and the two that held the window when its gate failed
  });
});

describe('watch checks', () => {
  it('a failing watch stops the wave at once (not after it) and halts with the check named', async () => {
    const t = setup({
      hosts: 2,
      waves: '{ size: 2, concurrency: 2 }',
      // Steps that never end by themselves: only the watch can stop them.
      stepCmd: `touch started-{{host.name}}; ${shellWaitForFile('never')}`,
      extra: `watch:
  - name: error-rate
    run: "test ! -e errors-high"
    interval: 200ms`,
    });
    const running = runRelease(t.req);
    await waitFor(() => existsSync(join(t.dir, 'started-h-01')) && existsSync(join(t.dir, 'started-h-02')), 'both hosts in their step');
    writeFileSync(join(t.dir, 'errors-high'), '');
    expect(await running).toBe(1);
    expect(t.effects()).toEqual([]);
    const halted = t.events.find((e) => e.event === 'run.halted') as Extract<EngineEvent, { event: 'run.halted' }>;
    expect(halted.reason).toMatch(/watch error-rate/);
    expect(t.records().some((r) => r.type === 'gate' && r.check === 'error-rate' && !r.ok)).toBe(true);
  });

  it('a healthy watch lets the release finish', async () => {
    // The steps end once the watch has passed at least once.
    const t = setup({
      hosts: 2,
      waves: '{ size: 2, concurrency: 2 }',
      stepCmd: shellWaitForFile('go'),
      extra: 'watch:\n  - { name: ok, run: "true", interval: 100ms }',
    });
    const running = runRelease(t.req);
    await waitFor(() => t.records().some((r) => r.type === 'gate' && r.check === 'ok' && r.ok), 'a passing watch');
    writeFileSync(join(t.dir, 'go'), '');
    expect(await running).toBe(0);
    expect(t.records().filter((r) => r.type === 'gate' && r.check === 'ok' && r.ok).length).toBeGreaterThan(0);
  });
});
