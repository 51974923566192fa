/** The CLI contract through the built binary: plan (dry run, JSON shape), run --json events, exit codes, locks. */
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, events, finished, hostsYaml, requireBuiltCli, startCli, tempDirs, writePlaybook } from '../helpers/cli.js';
import { shellWaitForFile, waitFor } from '../helpers/wait.js';

requireBuiltCli();
const temp = tempDirs('gw-cli-');

const pb = (hosts: number, step = 'touch ran-{{host.name}}', waves = '{ canary: 1, size: 25% }') =>
  `name: rel\nversion: "9.9"\nhosts:\n${hostsYaml(hosts)}\nwaves: ${waves}\nsteps:\n  - name: stop\n    run: "${step}"\n  - name: start\n    run: "true"\n`;

describe('plan', () => {
  it('--json prints the pinned shape (12 hosts → 1,3,3,3,2) and contacts nothing', async () => {
    const dir = temp();
    const file = writePlaybook(dir, pb(12));
    const r = await cli(['plan', file, '--json'], { cwd: dir });
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan).toMatchObject({ release: 'rel', version: '9.9', steps: ['stop', 'start'] });
    expect(plan.waves.map((w: { index: number; hosts: string[] }) => [w.index, w.hosts.length])).toEqual([
      [1, 1],
      [2, 3],
      [3, 3],
      [4, 3],
      [5, 2],
    ]);
    expect(plan.waves[0]).toEqual({ index: 1, hosts: ['h-01'] });
    expect(plan.waves.flatMap((w: { hosts: string[] }) => w.hosts)).toEqual(Array.from({ length: 12 }, (_, i) => `h-${String(i + 1).padStart(2, '0')}`));
    const text = await cli(['plan', file], { cwd: dir });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('touch ran-h-01');
    // Every host's resolved commands, not only the first host of each wave: whole in --json, in the text the
    // pipeline once per wave with each host's own part.
    for (let i = 1; i <= 12; i++) {
      const h = `h-${String(i).padStart(2, '0')}`;
      expect(plan.hosts[h].map((s: { command: string }) => s.command)).toEqual([`touch ran-${h}`, 'true']);
      if (i > 1) expect(text.stdout).toContain(`${h} ran-${h}`);
    }
    expect(text.stdout).toContain('wave 1 (canary, 1 host): h-01');
    expect(text.stdout).toContain('nothing was contacted');
    // Nothing ran, nothing was written.
    expect(existsSync(join(dir, 'ran-h-01'))).toBe(false);
    expect(existsSync(join(dir, '.graywave'))).toBe(false);
  });
});

describe('plan: resolved commands', () => {
  it("--json gives each host's command as it would run and its undo command apart; the text shows both", async () => {
    const dir = temp();
    const file = writePlaybook(
      dir,
      `name: rel\nversion: "9.9"\nhosts:\n${hostsYaml(2)}\nsteps:\n  - name: stop\n    run: "echo stop {{host.name}}"\n    undo: "echo start {{host.name}}"\n  - name: mark\n    run: "echo {{version}}"\n`,
    );
    const plan = JSON.parse((await cli(['plan', file, '--json'], { cwd: dir })).stdout);
    expect(plan.hosts['h-02']).toEqual([
      { step: 'stop', action: 'run', command: 'echo stop h-02', undo: true, undoCommand: 'echo start h-02' },
      { step: 'mark', action: 'run', command: 'echo 9.9', undo: false },
    ]);
    const text = (await cli(['plan', file], { cwd: dir })).stdout;
    expect(text).toContain('wave 2 (1 host): h-02\n  1. stop: echo stop h-02\n       undo: echo start h-02\n  2. mark: echo 9.9  (no undo)\n');
  });
});

describe('plan: small fleets with the usual canary', () => {
  it('1, 2 and 3 hosts with canary 1, 25% plan 1 / 1,1 / 1,1,1 (a canary of the whole fleet is one wave)', async () => {
    for (const [n, sizes] of [
      [1, [1]],
      [2, [1, 1]],
      [3, [1, 1, 1]],
    ] as const) {
      const dir = temp();
      const r = await cli(['plan', writePlaybook(dir, pb(n)), '--json'], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).waves.map((w: { hosts: string[] }) => w.hosts.length)).toEqual(sizes);
    }
  });
});

describe('run --json', () => {
  it('emits one JSON event per line with release/wave/host/step/ms; status --json agrees', async () => {
    const dir = temp();
    const file = writePlaybook(dir, pb(3, 'echo out-{{host.name}}; touch ran-{{host.name}}', '{ canary: 1, size: 2 }'));
    const r = await cli(['run', file, '--yes', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const ev = events(r.stdout);
    expect(r.stdout.trim().split('\n').length).toBe(ev.length);
    const names = new Set(ev.map((e) => e.event));
    for (const n of ['run.start', 'wave.start', 'step.start', 'step.done', 'wave.done', 'run.done']) expect(names.has(n), n).toBe(true);
    for (const e of ev) expect(e.release).toBe('rel');
    for (const e of ev.filter((x) => x.event === 'step.done')) {
      expect(e).toMatchObject({
        wave: expect.any(Number),
        host: expect.stringMatching(/^h-0[123]$/),
        step: expect.stringMatching(/^(stop|start)$/),
        ms: expect.any(Number),
      });
    }
    expect(ev.filter((e) => e.event === 'step.done').length).toBe(6);
    expect(ev.find((e) => e.event === 'wave.done' && e.wave === 2)).toMatchObject({ ms: expect.any(Number) });
    expect(readFileSync(join(dir, '.graywave/rel/logs/h-02.log'), 'utf8')).toContain('out-h-02');
    const st = await cli(['status', file, '--json'], { cwd: dir });
    const s = JSON.parse(st.stdout);
    expect(s.status).toBe('done');
    expect(s.waves.flatMap((w: { hosts: { status: string }[] }) => w.hosts.map((h) => h.status))).toEqual(['done', 'done', 'done']);
  });

  it('a failing step: exit 1, step.failed and run.halted events, the output tail shown', async () => {
    const dir = temp();
    const file = writePlaybook(dir, pb(2, "echo 'why it broke' >&2; exit 3", '{ size: 1 }'));
    const r = await cli(['run', file, '--yes', '--json'], { cwd: dir });
    expect(r.code).toBe(1);
    const ev = events(r.stdout);
    expect(ev.find((e) => e.event === 'step.failed')).toMatchObject({
      release: 'rel',
      wave: 1,
      host: 'h-01',
      step: 'stop',
      ms: expect.any(Number),
      output: ['why it broke'],
    });
    expect(ev.at(-1)).toMatchObject({ event: 'run.halted', release: 'rel' });
    const plain = await cli(['resume', file, '--yes', '--plain'], { cwd: dir });
    expect(plain.code).toBe(1);
    expect(plain.stdout).toMatch(/FAILED[^\n]*\n\s+\| why it broke/);
    expect((await cli(['run', file, '--yes'], { cwd: dir })).code).toBe(2); // already in progress: usage
    expect((await cli(['frobnicate'], { cwd: dir })).code).toBe(2);
  });
});

describe('locks', () => {
  it('a second run exits 3 naming the holder; unlock refuses a live holder; a stale lock says how to clear it', async () => {
    const dir = temp();
    mkdirSync(join(dir, 'gate'));
    const file = writePlaybook(dir, pb(1, `touch started; ${shellWaitForFile('gate/open')}`, '{ size: 1 }'));
    const first = startCli(['run', file, '--yes', '--json'], { cwd: dir });
    await waitFor(() => existsSync(join(dir, 'started')), 'the first run to start its step', { timeoutMs: 60_000, everyMs: 20 });
    const second = await cli(['run', file, '--yes'], { cwd: dir });
    expect(second.code).toBe(3);
    expect(second.stderr).toContain(`release is locked by pid ${first.pid}`);
    expect(second.stderr).toMatch(/run since/);
    const resume = await cli(['resume', file, '--yes'], { cwd: dir });
    expect(resume.code).toBe(3);
    const unlock = await cli(['unlock', file, '--force'], { cwd: dir });
    expect(unlock.code).toBe(3);
    expect(unlock.stderr).toContain(`pid ${first.pid}`);
    expect(existsSync(join(dir, '.graywave/rel/lock'))).toBe(true);
    writeFileSync(join(dir, 'gate/open'), '');
    expect((await finished(first, 60_000)).code).toBe(0);
    expect(existsSync(join(dir, '.graywave/rel/lock'))).toBe(false);

    // A lock left by a dead pid on this host.
    const dead = startCli(['--version']);
    await finished(dead);
    const lock = JSON.parse(
      JSON.stringify({ user: 'someone', host: (await import('node:os')).hostname(), pid: dead.pid, startedAt: new Date().toISOString(), command: 'run' }),
    );
    writeFileSync(join(dir, '.graywave/rel/lock'), JSON.stringify(lock));
    const stale = await cli(['run', file, '--yes'], { cwd: dir });
    expect(stale.code).toBe(3);
    expect(stale.stderr).toMatch(new RegExp(`pid ${dead.pid} .*no longer running \\(stale lock\\)`));
    expect(stale.stderr).toMatch(/hint: .*graywave unlock .* --force/);
    const cleared = await cli(['unlock', file, '--force'], { cwd: dir });
    expect(cleared.code).toBe(0);
    expect(cleared.stdout).toContain(`removed the lock of pid ${dead.pid}`);
    expect((await cli(['unlock', file], { cwd: dir })).code).toBe(2);
  });
});

describe('usage', () => {
  it('no command is a usage error (exit 2, the help on stderr); --help, help and --version exit 0', async () => {
    const bare = await cli([]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/Usage: graywave/);
    for (const args of [['--help'], ['help'], ['--version']]) expect((await cli(args)).code, args.join(' ')).toBe(0);
    expect((await cli(['no-such-command'])).code).toBe(2);
  });
});
