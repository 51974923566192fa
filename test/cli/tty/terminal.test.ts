/**
 * What a person sees and presses in a real terminal (issue 16), through the built CLI in a tmux pane: Ctrl-C in the
 * live view, an approval prompt answered on screen, the live view during verify / switchover / rollback, colours.
 * Local-transport playbooks whose steps wait for marker files, so each test moves the release on exactly when the
 * screen shows what it must.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { readJournal } from '../../../src/journal/journal.js';
import { BIN, cli, requireBuiltCli, tempDirs, writePlaybook } from '../../helpers/cli.js';
import { shellWaitForFile } from '../../helpers/wait.js';
import { requireTmux, terminalsOfThisFile } from './tmux.js';

requireBuiltCli();
requireTmux();
const temp = tempDirs('gw-tty-');

/** Colour escapes (SGR with a foreground/background colour or bold), as `capture-pane -e` shows them. */
const COLOURED = /\x1b\[(?:[0-9;]*;)?(?:3[0-7]|9[0-7]|4[0-7]|1)(?:;[0-9;]*)?m/;

/** An http-admin endpoint per host (drain = suspend), so a halted release has hosts that are still drained. */
const drained = new Map<string, boolean>();
const admin = http.createServer((req, res) => {
  req.resume();
  const m = /^\/([\w-]+)\/(suspend|resume|status)$/.exec(req.url ?? '');
  if (!m) return void res.writeHead(404).end();
  if (m[2] === 'suspend') drained.set(m[1]!, true);
  if (m[2] === 'resume') drained.set(m[1]!, false);
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ consumer: drained.get(m[1]!) ? 'suspended' : 'running' }));
});
let adminUrl = '';
beforeAll(async () => {
  await new Promise<void>((r) => admin.listen(0, '127.0.0.1', r));
  adminUrl = `http://127.0.0.1:${(admin.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => admin.close(() => r())));

const start = terminalsOfThisFile();

/** Waits (a marked loop, no fixed sleep) until the file `name` exists in the playbook's directory (or that is gone). */
const until = (name: string) => shellWaitForFile(name);

describe('Ctrl-C in the live view', () => {
  it('stops at the next safe point: exit 1, the halt journalled, the lock released, the drained hosts on screen and in status', async () => {
    const dir = temp();
    const file = writePlaybook(
      dir,
      `name: ctrlc
version: "2.0"
hosts:
  - { name: h-01, address: 10.0.0.1 }
  - { name: h-02, address: 10.0.0.2 }
  - { name: h-03, address: 10.0.0.3 }
  - { name: h-04, address: 10.0.0.4 }
waves: { size: 3, concurrency: 2 }
providers:
  admin:
    type: http-admin
    drain: { http: "${adminUrl}/{{host.name}}/suspend", method: POST }
    restore: { http: "${adminUrl}/{{host.name}}/resume", method: POST }
    check: { http: "${adminUrl}/{{host.name}}/status", jsonPath: consumer, equals: suspended }
steps:
  - drain: admin
    interval: 100ms
  - name: deploy
    run: "touch in-{{host.name}}; ${until('never')}"
  - restore: admin
`,
    );
    const t = start(['run', file, '--yes'], { cwd: dir });
    // Both hosts inside the step, on screen and for real (their commands have started).
    await t.waitFor((s) => /h-01 › deploy/.test(s) && /h-02 › deploy/.test(s) && existsSync(join(dir, 'in-h-01')) && existsSync(join(dir, 'in-h-02')));
    t.keys(['C-c']);
    // The notice shows at once, in the view.
    await t.waitFor(/stopping at the next safe point \(Ctrl-C again to force\)/, 5_000);
    const code = await t.exitCode(15_000);
    const screen = t.screen();
    expect(code, screen).toBe(1);
    expect(screen).toMatch(/HALTED: interrupted \(Ctrl-C\)/);
    expect(screen).toMatch(/still drained: h-01, h-02/);
    // Hosts never started show as not started, not as failed: h-03 (wave 1, beyond concurrency 2) and wave 2.
    expect(screen).toMatch(/h-03: not started/);
    expect(screen).toMatch(/Wave 2 \(1 host\): not started/);
    expect(screen).not.toMatch(/h-03 ›/);
    expect(screen).not.toMatch(/127/);
    const { records } = readJournal(join(dir, '.graywave/ctrlc/journal.jsonl'));
    expect(records.filter((r) => r.type === 'run').at(-1)).toMatchObject({ phase: 'halted', reason: 'interrupted (Ctrl-C)' });
    expect(existsSync(join(dir, '.graywave/ctrlc/lock'))).toBe(false);
    const status = await cli(['status', file, '--json'], { cwd: dir });
    expect(JSON.parse(status.stdout).stillDrained).toEqual(['h-01', 'h-02']);
  }, 60_000);

  it('a second Ctrl-C stops at once (exit 130) while the first still waits for what it must finish (a webhook that hangs)', async () => {
    const dir = temp();
    // The halt's notification goes to an endpoint that accepts the connection and never answers: the first Ctrl-C's
    // clean stop waits for that delivery (up to its 30s timeout), on any machine speed; only the second ends graywave.
    const sockets = new Set<import('node:net').Socket>();
    const hang = http.createServer(() => undefined);
    hang.on('connection', (c) => sockets.add(c));
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    onTestFinished(() => new Promise<void>((r) => (sockets.forEach((c) => c.destroy()), hang.close(() => r()))));
    const url = `http://127.0.0.1:${(hang.address() as AddressInfo).port}/hook`;
    const file = writePlaybook(
      dir,
      `name: twice\nversion: "1"\nhosts:\n  - { name: h-01, address: 10.0.0.1 }\nnotify:\n  - { name: hook, webhook: { url: "${url}" }, format: json, on: [halted], timeout: 30s }\nsteps:\n  - name: slow\n    run: "touch started; ${until('never')}"\n`,
    );
    const t = start(['run', file, '--yes'], { cwd: dir });
    await t.waitFor((sc) => /h-01 › slow/.test(sc) && existsSync(join(dir, 'started')));
    t.keys(['C-c']);
    await t.waitFor(/stopping at the next safe point/, 5_000);
    // The first stop is under way and held by the delivery: the webhook has its connection.
    await t.waitFor(() => sockets.size > 0, 10_000);
    t.keys(['C-c']);
    expect(await t.exitCode(10_000)).toBe(130);
    expect(t.screen()).toMatch(/Ctrl-C again: stopping now/);
  }, 60_000);
});

describe('SIGTERM in the live view', () => {
  it('the same clean stop as Ctrl-C: exit 1, "terminated (SIGTERM)" journalled, the lock released', async () => {
    const dir = temp();
    const file = writePlaybook(
      dir,
      `name: term\nversion: "1"\nhosts:\n  - { name: h-01, address: 10.0.0.1 }\n  - { name: h-02, address: 10.0.0.2 }\nwaves: { size: 1 }\nsteps:\n  - name: slow\n    run: "${until('never')}"\n`,
    );
    const t = start(['run', file, '--yes'], { cwd: dir });
    await t.waitFor(/h-01 › slow/);
    process.kill(t.pid(), 'SIGTERM');
    await t.waitFor(/stopping at the next safe point \(SIGTERM again to force\)/, 5_000);
    expect(await t.exitCode(15_000)).toBe(1);
    expect(t.screen()).toMatch(/HALTED: terminated \(SIGTERM\)/);
    expect(t.screen()).toMatch(/Wave 2 \(1 host\): not started/);
    const { records } = readJournal(join(dir, '.graywave/term/journal.jsonl'));
    expect(records.filter((r) => r.type === 'run').at(-1)).toMatchObject({ phase: 'halted', reason: 'terminated (SIGTERM)' });
    expect(existsSync(join(dir, '.graywave/term/lock'))).toBe(false);
  }, 60_000);
});

describe('prompts in the live view', () => {
  it('the approval question is on screen while the release waits, and the answer typed there is journalled', async () => {
    const dir = temp();
    const file = writePlaybook(
      dir,
      `name: ask\nversion: "1"\nhosts:\n  - { name: h-01, address: 10.0.0.1 }\n  - { name: h-02, address: 10.0.0.2 }\nwaves: { size: 1, pause: approve }\nsteps:\n  - name: mark\n    run: "touch ran-{{host.name}}"\n`,
    );
    const t = start(['run', file, '--yes'], { cwd: dir });
    const screen = await t.waitFor(/Continue with wave 2\? \[y\/N\]/, 20_000);
    expect(screen).toMatch(/h-01 done/);
    // The release really waits for the answer: wave 2 has not started.
    expect(existsSync(join(dir, 'ran-h-02'))).toBe(false);
    expect(screen).not.toMatch(/h-02 ›/);
    t.keys(['y', 'Enter']);
    expect(await t.exitCode(20_000)).toBe(0);
    expect(t.screen()).toMatch(/wave 1 approved by /);
    expect(existsSync(join(dir, 'ran-h-02'))).toBe(true);
    const { records } = readJournal(join(dir, '.graywave/ask/journal.jsonl'));
    expect(records.some((r) => r.type === 'wave' && r.phase === 'approved' && r.wave === 1)).toBe(true);
  }, 60_000);

  it('answering no halts with the approval hint (exit 1)', async () => {
    const dir = temp();
    writePlaybook(
      dir,
      `name: no\nversion: "1"\nhosts:\n  - { name: h-01, address: 10.0.0.1 }\n  - { name: h-02, address: 10.0.0.2 }\nwaves: { size: 1, pause: approve }\nsteps:\n  - name: mark\n    run: "true"\n`,
    );
    const t = start(['run', 'playbook.yaml', '--yes'], { cwd: dir });
    await t.waitFor(/Continue with wave 2\? \[y\/N\]/, 20_000);
    t.keys(['n', 'Enter']);
    expect(await t.exitCode(20_000)).toBe(1);
    expect(t.screen()).toMatch(/HALTED: wave 2 not approved/);
    expect(t.screen()).toMatch(/next: graywave approve playbook\.yaml, then graywave resume playbook\.yaml/);
  }, 60_000);
});

describe('the live view shows every release-level phase as it happens', () => {
  it('verify (with its value), the switchover, then rollback undo per host and step — no forward plan redrawn', async () => {
    const dir = temp();
    const file = writePlaybook(
      dir,
      `name: phases
version: "3.1"
hosts:
  - { name: h-01, address: 10.0.0.1 }
  - { name: h-02, address: 10.0.0.2 }
waves: { size: 1 }
steps:
  - name: deploy
    run: "touch deployed-{{host.name}}"
    undo: "touch undoing-{{host.name}}; ${until('go-undo')}"
verify:
  - name: smoke
    run: "${until('go-verify-$GRAYWAVE_WAVE')}; echo '10/10 answers from 3.1'"
switchover:
  at: 50%
  steps:
    - name: web-to-green
      run: "touch switching; ${until('go-switch')}"
      undo: "true"
`,
    );
    const t = start(['run', file, '--yes'], { cwd: dir });
    let s = await t.waitFor(/verify smoke …/);
    expect(s).toMatch(/h-01 done/);
    expect(s).not.toMatch(/h-02 ›/); // the next wave has not started, and does not look started
    writeFileSync(join(dir, 'go-verify-1'), '');
    s = await t.waitFor(/switchover: GREEN carries 50% after wave 1/);
    expect(s).toMatch(/verify smoke: ok \(exit 0\)/);
    expect(existsSync(join(dir, 'deployed-h-02'))).toBe(false);
    writeFileSync(join(dir, 'go-switch'), '');
    s = await t.waitFor(/switchover done/);
    writeFileSync(join(dir, 'go-verify-2'), '');
    expect(await t.exitCode()).toBe(0);
    expect(t.screen()).toMatch(/done: phases 3\.1 on 2 hosts in 2 waves/);

    const r = start(['rollback', file, '--all', '--yes'], { cwd: dir });
    s = await r.waitFor(/h-02 › undo deploy …/);
    expect(s).toMatch(/Undo wave 2 \(1 host\)/);
    expect(s).not.toMatch(/Wave 1 \(/); // not the forward plan with every host ✔
    writeFileSync(join(dir, 'go-undo'), '');
    s = await r.waitFor(/switchover: undid web-to-green/);
    expect(await r.exitCode()).toBe(0);
    s = r.screen();
    expect(s).toMatch(/h-01 rolled back/);
    expect(s).toMatch(/h-02 rolled back/);
    expect(s.indexOf('Undo wave 2')).toBeLessThan(s.indexOf('Undo wave 1'));
    expect(s).toMatch(/rollback done in/);
  }, 90_000);

  it('a halt in a later wave names `graywave rollback FILE --all` and the log directory; a second rollback mentions --all', async () => {
    const dir = temp();
    const file = writePlaybook(
      dir,
      `name: hint\nversion: "1"\nhosts:\n  - { name: h-01, address: 10.0.0.1 }\n  - { name: h-02, address: 10.0.0.2 }\nwaves: { size: 1 }\nsteps:\n  - name: deploy\n    run: "[ $GRAYWAVE_HOST = h-01 ]"\n    undo: "true"\n`,
    );
    const t = start(['run', 'playbook.yaml', '--yes'], { cwd: dir });
    expect(await t.exitCode()).toBe(1);
    const s = t.screen();
    expect(s).toMatch(new RegExp(`see the host logs in ${join(dir, '.graywave/hint/logs').replace(/[.]/g, '\\.')}`));
    expect(s).toMatch(/`graywave rollback playbook\.yaml --all` undoes every wave/);
    expect(s).toMatch(/`graywave resume playbook\.yaml`/);
    expect((await cli(['rollback', file, '--yes'], { cwd: dir })).code).toBe(0);
    const again = await cli(['rollback', 'playbook.yaml', '--yes'], { cwd: dir });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/nothing left to undo in wave 2/);
    expect(again.stderr).toMatch(/graywave rollback playbook\.yaml --all/);
  }, 60_000);
});

describe('--limit in the live view', () => {
  it('a run limited to part of a wave ends LIMITED (not HALTED, not red), the other hosts pending, with the command that continues', async () => {
    const dir = temp();
    writePlaybook(
      dir,
      `name: lim\nversion: "1"\nhosts:\n  - { name: h-01, address: 10.0.0.1 }\n  - { name: h-02, address: 10.0.0.2 }\n  - { name: h-03, address: 10.0.0.3 }\nwaves: { canary: 1, size: 2 }\nsteps:\n  - name: mark\n    run: "true"\nverify:\n  - name: smoke\n    run: "true"\n`,
    );
    const t = start(['run', 'playbook.yaml', '--yes', '--limit', 'h-01,h-02'], { cwd: dir });
    expect(await t.exitCode()).toBe(0);
    const s = t.screen();
    expect(s).not.toMatch(/HALTED/);
    expect(s).toMatch(/LIMITED: 2 host\(s\) done; 1 host\(s\) outside the limit still pending: h-03/);
    expect(s).toMatch(/next: graywave resume playbook\.yaml runs the 1 pending host \(h-03\), then the checks of wave 2/);
    expect(s).toMatch(/h-03: pending \(outside --limit\)/);
    expect(s).not.toMatch(/not started/);
    // The LIMITED line is not drawn in red (a halt is).
    const coloured = t
      .screen(true)
      .split('\n')
      .find((l) => l.includes('LIMITED'));
    expect(coloured).toBeDefined();
    expect(coloured).not.toMatch(/\x1b\[31m/);
  }, 60_000);
});

describe('colours', () => {
  const pb = (dir: string) =>
    writePlaybook(dir, `name: colours\nversion: "1"\nhosts:\n  - { name: h-01, address: 10.0.0.1 }\nsteps:\n  - name: mark\n    run: "true"\n`);

  it('a terminal gets colours (plan, error lines)', async () => {
    const dir = temp();
    const file = pb(dir);
    const plan = start(['plan', file], { cwd: dir });
    await plan.exitCode();
    expect(plan.screen(true)).toMatch(COLOURED);
    const err = start(['unlock', file], { cwd: dir });
    await err.exitCode();
    expect(err.screen(true)).toMatch(COLOURED);
  });

  for (const how of [
    { env: { NO_COLOR: '1' } as Record<string, string>, args: [] as string[] },
    { env: { NO_COLOR: '' }, args: [] },
    { env: {}, args: ['--no-color'] },
  ]) {
    it(`${how.args.length ? '--no-color' : `NO_COLOR=${JSON.stringify(how.env.NO_COLOR)}`} turns them off everywhere: plan, status, error lines, the live view`, async () => {
      const dir = temp();
      const file = pb(dir);
      const all = how.env.NO_COLOR === '1';
      for (const args of all
        ? [
            ['plan', file],
            ['run', file, '--yes'],
            ['status', file],
            ['unlock', file],
          ]
        : [
            ['plan', file],
            ['unlock', file],
          ]) {
        const t = start([...args, ...how.args], { cwd: dir, env: how.env });
        await t.exitCode();
        const s = t.screen(true);
        expect(s, args.join(' ')).not.toMatch(COLOURED);
        expect(t.screen().length).toBeGreaterThan(20);
      }
    });
  }
});

describe('FORCE_COLOR off a terminal', () => {
  it('forces colours into a pipe, also over NO_COLOR; FORCE_COLOR=0 and --no-color turn them off', async () => {
    const dir = temp();
    const file = writePlaybook(dir, `name: fc\nversion: "1"\nhosts:\n  - { name: h-01, address: 10.0.0.1 }\nsteps:\n  - name: mark\n    run: "true"\n`);
    const run = (env: Record<string, string | undefined>) => {
      const e = { ...process.env, ...env };
      for (const [k, v] of Object.entries(env)) if (v === undefined) delete e[k];
      return spawnSync(process.execPath, [BIN, 'plan', file], { cwd: dir, env: e, encoding: 'utf8' }).stdout;
    };
    expect(run({ FORCE_COLOR: '1', NO_COLOR: undefined, CI: undefined })).toMatch(COLOURED);
    expect(run({ FORCE_COLOR: undefined, NO_COLOR: undefined, CI: undefined })).not.toMatch(COLOURED);
    expect(run({ FORCE_COLOR: '1', NO_COLOR: '1', CI: undefined })).toMatch(COLOURED);
    expect(run({ FORCE_COLOR: '0', NO_COLOR: undefined, CI: undefined })).not.toMatch(COLOURED);
  });
});
