import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { deployAction, type DeploySaved } from '../../src/actions/deploy.js';
import type { StepContext } from '../../src/actions/types.js';
import type { Host } from '../../src/playbook/types.js';
import { SshTransport, sshTransportOptions } from '../../src/transport/ssh.js';
import type { Transport } from '../../src/transport/types.js';
import { Secrets } from '../../src/util/secrets.js';
import { render, renderShell } from '../../src/util/template.js';
import { makePlaybook } from '../helpers/contexts.js';
import { requireBinary } from './helpers/process.js';
import { hasSshd, loopbacks, startSshFleet, type SshFleet } from './helpers/sshd.js';

/** Counts SFTP uploads per host, to see which were skipped. */
class Counting implements Transport {
  uploads = new Map<string, number>();
  constructor(readonly inner: SshTransport) {}
  exec: Transport['exec'] = (h, c, o) => this.inner.exec(h, c, o);
  upload: Transport['upload'] = async (h, l, r, o) => {
    this.uploads.set(h.name, (this.uploads.get(h.name) ?? 0) + 1);
    await this.inner.upload(h, l, r, o);
  };
  release: Transport['release'] = (h) => this.inner.release(h);
  close: Transport['close'] = () => this.inner.close();
}

function stepCtx(dir: string, host: Host, version: string, transport: Transport): StepContext {
  const values = { release: 'r1', version, group: 'GREEN', host };
  const signal = new AbortController().signal;
  return {
    host,
    playbook: makePlaybook({ dir, version, hosts: [host] }),
    wave: 1,
    step: 'deploy',
    transport,
    signal,
    render: (t) => render(t, values),
    renderShell: (t) => renderShell(t, values),
    sh: (command, o) => transport.exec(host, command, { timeoutMs: o?.timeoutMs, input: o?.input, signal }),
    provider: () => {
      throw new Error('none');
    },
    monitor: () => {
      throw new Error('none');
    },
    savedOf: () => undefined,
    progress: () => {},
    log: () => {},
    deadline: Infinity,
  };
}

// sudo (Debian package `sudo`) for the sudo: true tests; CI=true: missing is a failure.
const hasSudo = hasSshd() && requireBinary('/usr/bin/sudo', 'apt-get install -y sudo');

// The same release on hosts with SFTP and on hardened hosts without the subsystem (uploads over an exec channel).
describe.skipIf(!hasSshd()).each([
  { sftp: true, n: 8 },
  { sftp: false, n: 4 },
])('deploy over SSH to $n hosts (real sshd, sftp: $sftp)', ({ sftp, n }) => {
  let fleet: SshFleet;
  let t: Counting;
  let hosts: Host[];
  const logs: string[] = [];
  const params = deployAction.params.parse({
    artifact: 'build/svc-{{version}}.tar.gz',
    to: '{{host.vars.root}}/opt/svc',
    keep: 3,
    // The app comes up in the release group; $SSH_CONNECTION proves it ran through that host's own address.
    start: 'echo "{{version}} {{group}}" $(echo $SSH_CONNECTION | cut -d" " -f3) >> {{host.vars.root}}/starts.log',
    healthy: { command: 'test -f {{host.vars.root}}/opt/svc/current/VERSION', timeout: '10s' },
  });

  beforeAll(async () => {
    fleet = await startSshFleet(loopbacks(2, n + 1), { sftp });
    t = new Counting(
      new SshTransport(
        sshTransportOptions.parse({ user: 'root', port: fleet.port, identityFile: fleet.clientKey, knownHostsFile: fleet.knownHosts, configFile: false }),
        {
          dir: fleet.dir,
          secrets: new Secrets(fleet.dir, {}),
          log: (h, line) => logs.push(`${h.name}: ${line}`),
        },
      ),
    );
    hosts = fleet.addresses.map((a, i) => ({ name: `web-${i + 1}`, address: a, vars: { root: join(fleet.dir, `host-${i + 1}`) }, labels: {} }));
    for (const h of hosts) mkdirSync(h.vars.root as string);
    for (const v of ['1.0.0', '2.0.0']) {
      const src = join(fleet.dir, `src-${v}`);
      mkdirSync(src);
      writeFileSync(join(src, 'VERSION'), v);
      mkdirSync(join(fleet.dir, 'build'), { recursive: true });
      execFileSync('tar', ['-czf', join(fleet.dir, 'build', `svc-${v}.tar.gz`), '-C', src, '.']);
    }
  }, 30_000);
  afterAll(async () => {
    await t?.close();
    await fleet?.stop();
  });

  const current = (h: Host) => readlinkSync(join(h.vars.root as string, 'opt/svc/current'));

  test('1.0.0 then 2.0.0 on every host in parallel, then rollback of every host', async () => {
    for (const version of ['1.0.0', '2.0.0']) {
      await Promise.all(hosts.map((h) => deployAction.do(stepCtx(fleet.dir, h, version, t), params)));
    }
    const saved = await Promise.all(hosts.map((h) => deployAction.do(stepCtx(fleet.dir, h, '2.0.0', t), params) as Promise<DeploySaved>));
    for (const [i, h] of hosts.entries()) {
      expect(current(h)).toBe(join(h.vars.root as string, 'opt/svc/releases/2.0.0'));
      expect(saved[i]!.previous).toBe(join(h.vars.root as string, 'opt/svc/releases/1.0.0'));
      // Two uploads per host (1.0.0, 2.0.0); the repeated 2.0.0 (a resume) found the checksum and skipped it.
      expect(t.uploads.get(h.name)).toBe(2);
      const starts = readFileSync(join(h.vars.root as string, 'starts.log'), 'utf8')
        .trim()
        .split('\n');
      expect(starts[0]).toMatch(new RegExp(`^1\\.0\\.0 GREEN ${h.address.replace(/\./g, '\\.')}$`));
      expect(starts.at(-1)).toMatch(/^2\.0\.0 GREEN/);
    }
    const t0 = Date.now();
    await Promise.all(hosts.map((h, i) => deployAction.undo!(stepCtx(fleet.dir, h, '2.0.0', t), params, saved[i])));
    const rollbackMs = Date.now() - t0;
    for (const h of hosts) {
      expect(current(h)).toBe(join(h.vars.root as string, 'opt/svc/releases/1.0.0'));
      expect(readFileSync(join(h.vars.root as string, 'opt/svc/current/VERSION'), 'utf8')).toBe('1.0.0');
    }
    expect(rollbackMs).toBeLessThan(30_000); // generous (a loaded 2-core machine), still not minutes: no upload, one switch and a start
    // Without the subsystem every host said so once per connection and streamed instead; with it, none did.
    const noSftp = logs.filter((l) => l.includes('no SFTP on this host'));
    if (sftp) expect(noSftp).toEqual([]);
    else expect(new Set(noSftp.map((l) => l.split(':')[0]))).toEqual(new Set(hosts.map((h) => h.name)));
  });

  test.skipIf(!hasSudo)('with sudo: true the files are written by the sudo user; the upload goes as the login user', async () => {
    const sudo = new SshTransport(
      sshTransportOptions.parse({
        user: 'root',
        port: fleet.port,
        identityFile: fleet.clientKey,
        knownHostsFile: fleet.knownHosts,
        configFile: false,
        sudo: true,
      }),
      { dir: fleet.dir, secrets: new Secrets(fleet.dir, {}) },
    );
    try {
      const h = { ...hosts[0]!, name: 'sudo-host', vars: { root: join(fleet.dir, 'sudo-root') } };
      mkdirSync(h.vars.root);
      const p = deployAction.params.parse({ ...params, start: 'echo "$SUDO_USER" > {{host.vars.root}}/who', healthy: undefined });
      await deployAction.do(stepCtx(fleet.dir, h, '1.0.0', sudo), p);
      expect(readFileSync(join(h.vars.root, 'who'), 'utf8')).toBe('root\n');
      expect(current(h)).toBe(join(h.vars.root, 'opt/svc/releases/1.0.0'));
    } finally {
      await sudo.close();
    }
  });
});
