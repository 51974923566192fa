import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyFixtureDir } from '../helpers/fixtures.js';
import { describe, expect, it } from 'vitest';
import { rangeServer } from '../helpers/range-server.js';
import { cli, events, finished, requireBuiltCli, startCli, tempDirs } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Release trains (issue #18) on the local transport, through the built CLI: fixtures/train/ has a train of three
 * apps (bfe; order after account; account with deploy: false) whose steps append to effects.log.
 */
requireBuiltCli();
const tmp = tempDirs('gw-train-');

const trainDir = (): string => copyFixtureDir('train', tmp());

const effects = (dir: string): string[] =>
  existsSync(join(dir, 'effects.log')) ? readFileSync(join(dir, 'effects.log'), 'utf8').trim().split('\n').filter(Boolean) : [];
const at = (lines: string[], line: string): number => {
  const i = lines.indexOf(line);
  expect(i, `${line} in effects.log`).toBeGreaterThanOrEqual(0);
  return i;
};
/** Holds the deploy step of every host in wave `from` and later (fixtures/train: a file hold-<host>). */
const holdFrom = (dir: string, from: number): void => {
  for (const waves of Object.values(WAVES)) for (const h of waves.slice(from - 1).flat()) writeFileSync(join(dir, `hold-${h}`), '');
};
/** Lets every held deploy step go. */
const release = (dir: string): void => {
  for (const f of readdirSync(dir)) if (f.startsWith('hold-')) rmSync(join(dir, f));
};
/** Every journal under the train's directory, as text (the train's own and its apps'). */
const journalText = (dir: string): string =>
  readdirSync(join(dir, '.graywave'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('journal.jsonl'))
    .map((f) => readFileSync(join(dir, '.graywave', f), 'utf8'))
    .join('');
// The apps' waves with canary 1 and 25%: account 3 hosts (1,1,1), order 4 (1,1,1,1), bfe 5 (1,2,2).
const WAVES: { account: string[][]; order: string[][]; bfe: string[][] } = {
  account: [['a-01'], ['a-02'], ['a-03']],
  order: [['o-01'], ['o-02'], ['o-03'], ['o-04']],
  bfe: [['b-01'], ['b-02', 'b-03'], ['b-04', 'b-05']],
};

describe('release train on the local transport', () => {
  it('plans every app per wave and places the switchover where GREEN carries 50% of every app', async () => {
    const dir = trainDir();
    const r = await cli(['plan', 'train.yaml', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.train).toBe(true);
    expect(plan.apps.map((a: { name: string }) => a.name)).toEqual(['bfe', 'account', 'order']);
    expect(plan.waves.map((w: { apps: Record<string, string[]> }) => w.apps)).toEqual([
      { bfe: ['b-01'], account: ['a-01'], order: ['o-01'] },
      { bfe: ['b-02', 'b-03'], account: ['a-02'], order: ['o-02'] },
      { bfe: ['b-04', 'b-05'], account: ['a-03'], order: ['o-03'] },
      { bfe: [], account: [], order: ['o-04'] },
    ]);
    // After wave 2: bfe 3/5, account 2/3, order 2/4 — the first wave where every app is at 50% or more.
    expect(plan.switchover.afterWave).toBe(2);
    const account = plan.apps.find((a: { name: string }) => a.name === 'account');
    expect(account.deploy).toBe(false);
    expect(account.skippedSteps).toEqual(['deploy']);
    expect(account.plan.steps).toEqual(['drain', 'relabel', 'restore']);
    const text = await cli(['plan', 'train.yaml'], { cwd: dir });
    expect(text.stdout).toContain('order (after account): o-02');
    expect(text.stdout).toContain('switchover (GREEN carries ≥ 50% of every app)');
  });

  it('runs lock-step waves: after: order inside a wave, deploy: false, train checks once every part is done, the switchover after wave 2', async () => {
    const dir = trainDir();
    const r = await cli(['run', 'train.yaml', '--yes', '--json'], { cwd: dir });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const lines = effects(dir);
    expect(lines.filter((l) => /^account .* deploy/.test(l))).toEqual([]); // deploy: false
    expect(lines.filter((l) => / deploy /.test(l))).toHaveLength(9); // bfe 5 + order 4
    for (const [app, waves] of Object.entries(WAVES) as [string, string[][]][])
      for (const hosts of waves) for (const h of hosts) expect(lines).toContain(`${app} ${h} relabel GREEN`);
    for (let k = 0; k < 4; k++) {
      const verify = at(lines, `train verify wave ${k + 1}`);
      for (const [app, waves] of Object.entries(WAVES) as [string, string[][]][]) {
        for (const h of waves[k] ?? []) {
          expect(at(lines, `${app} ${h} restore`), `${h} before the checks of wave ${k + 1}`).toBeLessThan(verify);
          if (k > 0) expect(at(lines, `${app} ${h} drain`), `${h} after the checks of wave ${k}`).toBeGreaterThan(at(lines, `train verify wave ${k}`));
        }
      }
      // order's part starts after account's is done.
      if (WAVES.account[k]) expect(at(lines, `order ${WAVES.order[k]![0]} drain`)).toBeGreaterThan(at(lines, `account ${WAVES.account[k]![0]} restore`));
    }
    const sw = at(lines, 'train switchover');
    expect(sw).toBeGreaterThan(at(lines, 'train verify wave 2'));
    expect(sw).toBeLessThan(at(lines, 'bfe b-04 drain'));
    const ev = events(r.stdout);
    expect(ev.find((e) => e.event === 'switchover.start')?.afterWave).toBe(2);
    expect(ev.filter((e) => e.event === 'wave.start').map((e) => e.hosts.length)).toEqual([3, 4, 4, 1]);
    expect(ev.some((e) => e.event === 'host.done' && e.host === 'order/o-04')).toBe(true);
    // order's part waits for account's in waves 1–3 (the view says so); in wave 4 account has no hosts: nothing to wait for.
    expect(ev.filter((e) => e.event === 'app.waiting').map((e) => `${e.wave} ${e.app} ${e.after.join(',')}`)).toEqual([
      '1 order account',
      '2 order account',
      '3 order account',
    ]);
    for (const k of [1, 2, 3]) {
      const waiting = ev.findIndex((e) => e.event === 'app.waiting' && e.wave === k);
      expect(ev.findIndex((e) => e.event === 'step.start' && e.host === `order/${WAVES.order[k - 1]![0]}`)).toBeGreaterThan(waiting);
    }
    const st = JSON.parse((await cli(['status', 'train.yaml', '--json'], { cwd: dir })).stdout);
    expect(st.status).toBe('done');
    expect(st.apps.map((a: { name: string; done: number; hosts: number }) => [a.name, a.done, a.hosts])).toEqual([
      ['bfe', 5, 5],
      ['account', 3, 3],
      ['order', 4, 4],
    ]);
  });

  it('a failure in one app holds the others at a safe point and halts; resume continues every app from its exact step', async () => {
    const dir = trainDir();
    writeFileSync(join(dir, 'fail-a-02-restore'), '');
    const r = await cli(['run', 'train.yaml', '--yes', '--json'], { cwd: dir });
    expect(r.code).toBe(1);
    const halted = events(r.stdout).find((e) => e.event === 'run.halted');
    expect(halted?.reason).toMatch(/^train wave 2: app account: wave 2: 1 host\(s\) failed \(a-02\), more than its maxFailures 0; a-02 at restore: /);
    let lines = effects(dir);
    // bfe's part ran beside account's: its hosts in flight finished their whole pipeline (none left drained).
    for (const h of ['b-02', 'b-03']) expect(lines).toContain(`bfe ${h} restore`);
    // order waits for account: its part of wave 2 never started.
    expect(lines.some((l) => l.startsWith('order o-02'))).toBe(false);
    expect(lines).not.toContain('train verify wave 2');
    expect(lines).not.toContain('train switchover');
    const st = JSON.parse((await cli(['status', 'train.yaml', '--json'], { cwd: dir })).stdout);
    expect(st.status).toBe('halted');
    expect(st.waves[1].hosts.map((h: { host: string; status: string }) => `${h.host}:${h.status}`)).toEqual([
      'bfe/b-02:done',
      'bfe/b-03:done',
      'account/a-02:failed',
      'order/o-02:pending',
    ]);
    expect(st.apps.map((a: { name: string; status: string }) => `${a.name}:${a.status}`)).toEqual(['bfe:running', 'account:failed', 'order:running']);

    rmSync(join(dir, 'fail-a-02-restore'));
    const again = await cli(['resume', 'train.yaml', '--yes', '--json'], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    lines = effects(dir);
    expect(lines.filter((l) => l === 'account a-02 drain')).toHaveLength(1); // from the failed step, not from the start
    expect(lines.filter((l) => l === 'bfe b-02 drain')).toHaveLength(1);
    expect(lines.filter((l) => l === 'train verify wave 1')).toHaveLength(1);
    expect(at(lines, 'order o-02 drain')).toBeGreaterThan(at(lines, 'account a-02 restore'));
    expect(lines).toContain('order o-04 restore');
  });

  it('rollback --all undoes newest wave first, consumers before providers, the switchover in its place', async () => {
    const dir = trainDir();
    expect((await cli(['run', 'train.yaml', '--yes', '--json'], { cwd: dir })).code).toBe(0);
    writeFileSync(join(dir, 'effects.log'), '');
    const r = await cli(['rollback', 'train.yaml', '--all', '--yes', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const lines = effects(dir);
    // Wave by wave, newest first; in a wave: order, then account, then bfe (reverse start order).
    const firstUndo = (app: string, h: string) => at(lines, `${app} ${h} undo-restore`);
    const lastUndo = (app: string, h: string) => at(lines, `${app} ${h} undo-drain`);
    expect(lastUndo('order', 'o-04')).toBeLessThan(firstUndo('order', 'o-03'));
    for (let k = 2; k >= 0; k--) {
      expect(lastUndo('order', WAVES.order[k]![0]!)).toBeLessThan(firstUndo('account', WAVES.account[k]![0]!));
      expect(lastUndo('account', WAVES.account[k]![0]!)).toBeLessThan(Math.min(...WAVES.bfe[k]!.map((h) => firstUndo('bfe', h))));
      if (k > 0) expect(Math.max(...WAVES.bfe[k]!.map((h) => lastUndo('bfe', h)))).toBeLessThan(firstUndo('order', WAVES.order[k - 1]![0]!));
    }
    const sw = at(lines, 'train undo-switchover');
    expect(sw).toBeGreaterThan(lastUndo('bfe', 'b-05'));
    expect(sw).toBeLessThan(firstUndo('order', 'o-02'));
    expect(lines.some((l) => /^account .* undo-deploy/.test(l))).toBe(false);
    const st = JSON.parse((await cli(['status', 'train.yaml', '--json'], { cwd: dir })).stdout);
    expect(st.status).toBe('rolled-back');
    expect(st.apps.every((a: { status: string }) => a.status === 'rolled-back')).toBe(true);
  });

  it('rollback (current wave) undoes the newest wave of every app only', async () => {
    const dir = trainDir();
    writeFileSync(join(dir, 'fail-o-03-deploy'), '');
    expect((await cli(['run', 'train.yaml', '--yes', '--json'], { cwd: dir })).code).toBe(1);
    writeFileSync(join(dir, 'effects.log'), '');
    const r = await cli(['rollback', 'train.yaml', '--yes', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const lines = effects(dir);
    expect(lines).toContain('order o-03 undo-drain');
    expect(lines).toContain('account a-03 undo-drain');
    expect(lines).toContain('bfe b-05 undo-drain');
    expect(lines.some((l) => /(a-02|o-02|b-02|b-03|a-01|o-01|b-01) /.test(l))).toBe(false);
    expect(lines).not.toContain('train undo-switchover');
  });

  it('kill -9 in the middle of a wave, then resume: every app ends done, no finished step runs twice', async () => {
    const dir = trainDir();
    holdFrom(dir, 2);
    const child = startCli(['run', 'train.yaml', '--yes', '--json'], { cwd: dir });
    // Kill once wave 2 is under way (a host of wave 2 has drained; its deploy is held).
    await waitFor(() => effects(dir).includes('bfe b-02 drain') || child.exitCode !== null, 'a host of wave 2 to drain', { timeoutMs: 60_000 });
    child.kill('SIGKILL');
    await finished(child);
    release(dir);
    const before = effects(dir);
    expect(before).not.toContain('order o-04 restore');
    // What the journal holds as finished when the process died: "app host step" (account has no deploy step to
    // hold, so one of its steps may have written its effect and died before its `done` entry: that one may run again).
    const doneBefore = new Set(
      journalText(dir)
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { type: string; phase?: string; app?: string; host?: string; step?: string })
        .filter((e) => e.type === 'step' && e.phase === 'done')
        .map((e) => `${e.app} ${e.host} ${e.step}`),
    );
    const st = JSON.parse((await cli(['status', 'train.yaml', '--json'], { cwd: dir })).stdout);
    expect(st.status).toBe('interrupted');
    // The dead process's lock is stale: cleared by a person (as for one playbook), then resume continues.
    expect((await cli(['resume', 'train.yaml', '--yes'], { cwd: dir })).code).toBe(3);
    expect((await cli(['unlock', 'train.yaml', '--force'], { cwd: dir })).code).toBe(0);
    const r = await cli(['resume', 'train.yaml', '--yes', '--json'], { cwd: dir });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const lines = effects(dir);
    // A step that finished before the kill is not run again; only the step in flight may run twice.
    const finishedBefore = before.filter((l) => / (relabel GREEN|restore)$/.test(l) && doneBefore.has(l.replace(/ GREEN$/, '')));
    expect(finishedBefore.length, 'steps finished before the kill').toBeGreaterThan(0);
    for (const l of finishedBefore)
      expect(
        lines.filter((x) => x === l),
        l,
      ).toHaveLength(1);
    for (const [app, waves] of Object.entries(WAVES) as [string, string[][]][]) for (const h of waves.flat()) expect(lines).toContain(`${app} ${h} restore`);
    expect(lines.filter((l) => l === 'train switchover')).toHaveLength(1);
    expect(JSON.parse((await cli(['status', 'train.yaml', '--json'], { cwd: dir })).stdout).status).toBe('done');
  });

  it('an approval after the canary pauses the whole train (exit 4); graywave approve, then resume goes on', async () => {
    const dir = trainDir();
    const file = join(dir, 'train.yaml');
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace('waves: { canary: 1, size: 25% }', 'waves: { canary: 1, size: 25%, pause: { afterCanary: approve } }'),
    );
    const r = await cli(['run', 'train.yaml', '--yes', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(4);
    expect(events(r.stdout).find((e) => e.event === 'run.paused')?.wave).toBe(1);
    expect(effects(dir)).toContain('train verify wave 1');
    expect(effects(dir).some((l) => / (b-02|a-02|o-02) /.test(l))).toBe(false);
    expect((await cli(['resume', 'train.yaml', '--yes'], { cwd: dir })).code).toBe(4); // still waiting
    const ok = await cli(['approve', 'train.yaml', '--yes', '--reason', 'canary looks good'], { cwd: dir });
    expect(ok.code, ok.stderr).toBe(0);
    const again = await cli(['resume', 'train.yaml', '--yes', '--json'], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    expect(effects(dir)).toContain('order o-04 restore');
    expect(effects(dir).filter((l) => l === 'train verify wave 1')).toHaveLength(1);
  });

  it("an app's own check failing applies the train's onFailure: rollback-wave undoes that wave of every app", async () => {
    const dir = trainDir();
    const train = join(dir, 'train.yaml');
    writeFileSync(train, readFileSync(train, 'utf8').replace('onFailure: halt', 'onFailure: rollback-wave'));
    const order = join(dir, 'order.yaml');
    writeFileSync(order, readFileSync(order, 'utf8') + 'verify:\n  - name: order-smoke\n    run: "test ! -e fail-order-smoke-{{wave}}"\n');
    writeFileSync(join(dir, 'fail-order-smoke-2'), '');
    const r = await cli(['run', 'train.yaml', '--yes', '--json'], { cwd: dir });
    expect(r.code).toBe(1);
    const halted = events(r.stdout).find((e) => e.event === 'run.halted');
    expect(halted?.reason).toMatch(/^verification failed after wave 2: app order: .*order-smoke.*; every app rolled back \(rollback-wave\)$/);
    expect(events(r.stdout).some((e) => e.event === 'verify.failed' && e.check === 'order/order-smoke')).toBe(true);
    const lines = effects(dir);
    for (const l of ['order o-02 undo-drain', 'account a-02 undo-drain', 'bfe b-02 undo-drain', 'bfe b-03 undo-drain']) expect(lines).toContain(l);
    expect(lines.some((l) => /(o-01|a-01|b-01) undo/.test(l))).toBe(false); // wave 1 stays GREEN
    expect(lines).not.toContain('train verify wave 2');
  });

  it('graywave abort stops every app of a running train at its next step boundary', async () => {
    const dir = trainDir();
    holdFrom(dir, 2);
    const child = startCli(['run', 'train.yaml', '--yes', '--json'], { cwd: dir });
    await waitFor(() => effects(dir).includes('bfe b-02 drain') || child.exitCode !== null, 'a host of wave 2 to drain', { timeoutMs: 60_000 });
    const abort = await cli(['abort', 'train.yaml', '--reason', 'stop the train'], { cwd: dir });
    expect(abort.code, abort.stderr).toBe(0);
    // Once the running train has taken the request in (it journals it), the held deploys may finish.
    await waitFor(() => journalText(dir).includes('"action":"abort"') || child.exitCode !== null, 'the running train to journal the abort', {
      timeoutMs: 60_000,
    });
    release(dir);
    const r = await finished(child, 60_000);
    expect(r.code).toBe(1);
    expect(events(r.stdout).find((e) => e.event === 'run.halted')?.reason).toContain('stop the train');
    expect(effects(dir)).not.toContain('order o-04 drain');
    expect(JSON.parse((await cli(['status', 'train.yaml', '--json'], { cwd: dir })).stdout).status).toBe('halted');
  });
});

// ---- an app's judge, against a small server speaking Prometheus's query_range answer shape ----
/** GREEN's median latency per metric (`lat_a{group="GREEN"}` …); BLUE's is 0.25. */
const greenMedian: Record<string, number> = { a: 0.25, b: 0.25, c: 0.25 };
const prom = rangeServer(greenMedian);

describe("an app's marginal judge in a release train", () => {
  it('pauses the train (exit 4); status says which app and check wait; approve approves that app’s check; resume goes on', async () => {
    const dir = trainDir();
    const order = join(dir, 'order.yaml');
    writeFileSync(order, readFileSync(order, 'utf8') + prom.judgeYaml({ window: '1s', step: '50ms', minSamples: 15 }));
    greenMedian.c = 0.4; // one non-critical metric of three clearly worse: score 66.7 → marginal
    const r = await cli(['run', 'train.yaml', '--yes', '--json'], { cwd: dir, timeoutMs: 120_000 });
    expect(
      r.code,
      r.stderr +
        r.stdout
          .split('\n')
          .filter((l) => /halted|verify|paused/.test(l))
          .join('\n'),
    ).toBe(4);
    const ev = events(r.stdout);
    expect(ev.find((e) => e.event === 'verify.failed' && e.check === 'order/canary')?.verdict).toBe('marginal');
    expect(ev.find((e) => e.event === 'run.paused')?.reason).toMatch(
      /^wave 1: waiting for approval of app order: canary: marginal: score 66\.7 .*; approve with graywave approve, then graywave resume$/s,
    );
    expect(effects(dir)).toContain('order o-01 restore');
    expect(effects(dir)).not.toContain('train verify wave 1');

    let st = JSON.parse((await cli(['status', 'train.yaml', '--json'], { cwd: dir })).stdout);
    expect(st.status).toBe('paused');
    expect(st.pending).toHaveLength(1);
    expect(st.pending[0]).toMatchObject({ wave: 1, app: 'order' });
    expect(st.pending[0].detail).toMatch(/^canary: marginal: score 66\.7/);
    expect((await cli(['status', 'train.yaml'], { cwd: dir })).stdout).toMatch(/^waiting for approval: app order, wave 1: canary: marginal: score 66\.7/m);

    // Approve approves what waits: order's check of wave 1 (not a train wave, which waits for nothing).
    const ok = await cli(['approve', 'train.yaml', '--yes', '--json', '--reason', 'p99 c is known noisy'], { cwd: dir });
    expect(ok.code, ok.stderr).toBe(0);
    const approved = JSON.parse(ok.stdout);
    expect(approved).toMatchObject({ approved: true, wave: 1 });
    expect(approved.apps.map((p: { app: string; wave: number }) => `${p.app} ${p.wave}`)).toEqual(['order 1']);
    st = JSON.parse((await cli(['status', 'train.yaml', '--json'], { cwd: dir })).stdout);
    expect(st.pending).toBeUndefined();
    const log = await cli(['log', 'train.yaml', '--actions-only'], { cwd: dir });
    expect(log.stdout).toMatch(/approve .*p99 c is known noisy/);

    // resume: order's judge of wave 1 runs again (still marginal: approved, it passes); the later waves pass.
    greenMedian.c = 0.26;
    const again = await cli(['resume', 'train.yaml', '--yes', '--json'], { cwd: dir, timeoutMs: 120_000 });
    expect(again.code, again.stderr + again.stdout.slice(-2000)).toBe(0);
    expect(effects(dir).filter((l) => l === 'train verify wave 1')).toHaveLength(1);
    expect(effects(dir)).toContain('order o-04 restore');
    expect(effects(dir).filter((l) => l === 'order o-01 restore')).toHaveLength(1);

    // The report shows the app's judge with its evidence, and the pause and approval in wave 1.
    const rep = JSON.parse((await cli(['report', 'train.yaml', '--json'], { cwd: dir })).stdout);
    const judged = rep.gates.filter((g: { check: string; evidence?: unknown }) => g.check === 'order/canary' && g.evidence);
    expect(judged[0]).toMatchObject({ wave: 1, ok: false, evidence: { verdict: 'marginal', score: 66.7 } });
    expect(judged.length).toBeGreaterThanOrEqual(4);
    expect(rep.waves[0].events.map((e: { what: string }) => e.what)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^order: paused: canary: marginal/), expect.stringMatching(/^order: approved by /)]),
    );
    const md = (await cli(['report', 'train.yaml'], { cwd: dir })).stdout;
    expect(md).toMatch(/^### Wave 1: order\/canary — marginal/m);
  }, 300_000);
});
