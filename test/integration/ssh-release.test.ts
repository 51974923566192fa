import { execFileSync } from 'node:child_process';
import { killIfAlive } from './helpers/process.js';
import { shellWaitForFile, waitFor } from '../helpers/wait.js';
import { cli, events, requireBuiltCli } from '../helpers/cli.js';
import { existsSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasSshd, loopbacks, startSshFleet, type SshFleet } from './helpers/sshd.js';

/**
 * A full release of 8 hosts over SSH through the CLI (`graywave run … --yes --json`, then `rollback --all`):
 * each loopback address 127.0.0.2–9 is a host behind a real sshd. Hosts start on release 1.0.0 (laid out
 * Capistrano-style); the release drains (a flag file), deploys 2.0.0 with the deploy step, restores.
 * Needs a built dist (npm run build / npm test).
 */

/** `graywave ARGS` through the built CLI, with its JSON events parsed. */
async function graywave(args: string[], timeoutMs = 45_000) {
  const r = await cli(args, { timeoutMs });
  return { code: r.code, events: events(r.stdout), stderr: r.stderr };
}

describe.skipIf(!hasSshd())('a release of 8 hosts over SSH (CLI end to end)', () => {
  let fleet: SshFleet;
  let dir: string;
  const names = loopbacks(2, 9).map((_, i) => `web-${i + 1}`);
  const root = (name: string) => join(dir, 'hosts', name);
  const current = (name: string) => readlinkSync(join(root(name), 'opt/svc/current'));
  const accepted = () => fleet.servers.map((s) => s.log().match(/Accepted publickey/g)?.length ?? 0).reduce((a, b) => a + b, 0);

  requireBuiltCli();

  beforeAll(async () => {
    fleet = await startSshFleet(loopbacks(2, 9));
    dir = fleet.dir;
    // Every host already runs 1.0.0.
    for (const n of names) {
      const rel = join(root(n), 'opt/svc/releases/1.0.0');
      mkdirSync(rel, { recursive: true });
      writeFileSync(join(rel, 'VERSION'), '1.0.0');
      symlinkSync(rel, join(root(n), 'opt/svc/current'));
    }
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'VERSION'), '2.0.0');
    mkdirSync(join(dir, 'build'));
    execFileSync('tar', ['-czf', join(dir, 'build/svc-2.0.0.tar.gz'), '-C', src, '.']);
    const playbook = {
      name: 'ssh-release',
      version: '2.0.0',
      group: 'GREEN',
      hosts: loopbacks(2, 9).map((address, i) => ({ name: names[i], address, port: fleet.port, vars: { root: root(names[i]!) } })),
      transport: { type: 'ssh', user: 'root', identityFile: fleet.clientKey, knownHostsFile: fleet.knownHosts, configFile: false, connectTimeout: '10s' },
      waves: { canary: 1, size: 4, concurrency: 4, maxFailures: 0, pause: 'none' },
      steps: [
        { name: 'drain', run: 'touch {{host.vars.root}}/drained', undo: 'rm -f {{host.vars.root}}/drained' },
        {
          deploy: {
            artifact: 'build/svc-{{version}}.tar.gz',
            to: '{{host.vars.root}}/opt/svc',
            keep: 5,
            start: 'echo "{{version}} {{group}}" $(echo $SSH_CONNECTION | cut -d" " -f3) >> {{host.vars.root}}/starts.log',
            healthy: { command: 'test -f {{host.vars.root}}/opt/svc/current/VERSION', timeout: '10s' },
          },
        },
        { name: 'restore', run: 'rm -f {{host.vars.root}}/drained', undo: 'touch {{host.vars.root}}/drained' },
      ],
      onFailure: 'halt',
    };
    writeFileSync(join(dir, 'playbook.yml'), JSON.stringify(playbook, null, 2)); // JSON is YAML
  }, 30_000);
  afterAll(async () => {
    await fleet?.stop();
  });

  it('deploys 2.0.0 to all 8 hosts, one SSH connection per host, then rollback --all restores 1.0.0', async () => {
    const before = accepted();
    const run = await graywave(['run', join(dir, 'playbook.yml'), '--yes', '--json', '--state-dir', join(dir, 'state')]);
    expect(run.code, run.stderr + JSON.stringify(run.events.slice(-5))).toBe(0);
    expect(run.events.filter((e) => e.event === 'wave.start').map((e) => e.wave)).toEqual([1, 2, 3]);
    for (const [i, n] of names.entries()) {
      expect(current(n)).toBe(join(root(n), 'opt/svc/releases/2.0.0'));
      expect(readFileSync(join(root(n), 'opt/svc/current/VERSION'), 'utf8')).toBe('2.0.0');
      // Started as GREEN, on its own address: the step really went to that host.
      expect(readFileSync(join(root(n), 'starts.log'), 'utf8')).toBe(`2.0.0 GREEN 127.0.0.${i + 2}\n`);
      expect(existsSync(join(root(n), 'drained'))).toBe(false);
    }
    expect(accepted() - before).toBe(8); // each host's steps shared one connection

    const rb = await graywave(['rollback', join(dir, 'playbook.yml'), '--all', '--yes', '--json', '--state-dir', join(dir, 'state')]);
    expect(rb.code, rb.stderr + JSON.stringify(rb.events.slice(-5))).toBe(0);
    for (const n of names) {
      expect(current(n)).toBe(join(root(n), 'opt/svc/releases/1.0.0'));
      expect(
        readFileSync(join(root(n), 'starts.log'), 'utf8')
          .trim()
          .split('\n'),
      ).toHaveLength(2); // start ran again
      expect(existsSync(join(root(n), 'drained'))).toBe(false); // restore and drain undone in reverse order
    }
  }, 58_000);
  /** A one-host playbook on web-1 with the given steps; its own name and state dir. */
  function onePlaybook(name: string, steps: object[], onFailure = 'halt'): string {
    const file = join(dir, `${name}.yml`);
    writeFileSync(
      file,
      JSON.stringify({
        name,
        version: '2.0.0',
        hosts: [{ name: 'web-1', address: '127.0.0.2', port: fleet.port, vars: { root: root('web-1') } }],
        transport: { type: 'ssh', user: 'root', identityFile: fleet.clientKey, knownHostsFile: fleet.knownHosts, configFile: false },
        waves: { size: 1, concurrency: 1, maxFailures: 0, pause: 'none' },
        steps,
        onFailure,
      }),
    );
    return file;
  }

  for (const retries of [1, 0]) {
    it(`a connection killed mid-step: ${retries ? 'retried on a new connection (retries: 1)' : 'halts the release (retries: 0)'}`, async () => {
      const flag = join(root('web-1'), `started-${retries}`);
      const go = join(root('web-1'), `go-${retries}`);
      // The step holds until the test lets it go: the connection is killed while it surely runs, however slow the machine.
      const file = onePlaybook(`killed-${retries}`, [{ name: 'slow', run: `touch ${flag}; ${shellWaitForFile(go)}`, retries }]);
      const running = graywave(['run', file, '--yes', '--json', '--state-dir', join(dir, 'state')]);
      await waitFor(() => existsSync(flag), 'the step to start on web-1', { timeoutMs: 20_000 });
      // Kill the sshd processes serving the step's session (children of our own listener, by PID).
      for (const pid of fleet.sessionPids(fleet.serverFor('127.0.0.2'))) killIfAlive(pid); // a session may end on its own meanwhile
      writeFileSync(go, ''); // the retry (and the orphaned first attempt) may finish now
      const r = await running;
      const retry = r.events.find((e) => e.event === 'step.retry');
      if (retries) {
        expect(r.code, r.stderr + JSON.stringify(r.events.slice(-5))).toBe(0);
        expect(retry?.error).toMatch(/connection lost while the command ran/);
        expect(r.events.filter((e) => e.event === 'step.start' && e.step === 'slow').map((e) => e.attempt)).toEqual([1, 2]);
      } else {
        expect(r.code).toBe(1);
        expect(retry).toBeUndefined();
        expect(r.events.find((e) => e.event === 'step.failed')?.error).toMatch(
          /ssh root@127\.0\.0\.2:\d+ \(host web-1\): connection lost while the command ran/,
        );
        expect(r.events.at(-1)).toMatchObject({ event: 'run.halted' });
      }
    }, 40_000);
  }

  it('a step timeout kills the remote command and fails the step', async () => {
    const marker = `sleep 41.${process.pid}`;
    const file = onePlaybook('timeout', [{ name: 'hang', run: `${marker} & ${marker}`, timeout: '1s' }]);
    const r = await graywave(['run', file, '--yes', '--json', '--state-dir', join(dir, 'state')]);
    expect(r.code).toBe(1);
    expect(r.events.find((e) => e.event === 'step.failed')?.error).toMatch(/timed out/);
    const alive = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.startsWith(marker));
    expect(alive).toEqual([]);
  }, 30_000);
});
