import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { preflight } from '../../src/app/preflight.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import type { Host } from '../../src/playbook/types.js';
import type { ExecOptions, ExecResult, Transport } from '../../src/transport/types.js';

/**
 * How many commands the preflight sends each host, and what it concludes from their answers (a transport that
 * answers like a host: a shell that runs the command, or a login shell that refuses to start).
 */
const dir = mkdtempSync(join(tmpdir(), 'gw-preflight-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'app.tgz'), 'x'.repeat(4096));

function playbook(sudo: boolean) {
  const file = join(dir, `pb-${sudo}.yaml`);
  writeFileSync(
    file,
    `name: pf
version: "1.0.0"
group: GREEN
transport: { type: ssh, user: deploy${sudo ? ', sudo: true' : ''} }
hosts:
  - { name: ok-1, address: 10.0.0.1 }
  - { name: nologin, address: 10.0.0.2 }
steps:
  - deploy: { artifact: app.tgz, to: /opt/app }
`,
  );
  return loadPlaybook(file);
}

const DF = 'Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 1000000 1000 900000 1% /\n';

/** ok-1 runs every command (df answers), nologin's account has /usr/sbin/nologin as its shell. */
function fakeHosts(): Transport & { sent: { host: string; command: string; sudo: boolean }[] } {
  const sent: { host: string; command: string; sudo: boolean }[] = [];
  const answer = (host: Host, command: string): ExecResult => {
    if (host.name === 'nologin') return { code: 1, timedOut: false, stdout: '', stderr: 'This account is currently not available.\n' };
    const marker = /^echo (\S+); /.exec(command)?.[1];
    const df = command.includes('df -Pk') ? DF : '';
    return { code: 0, timedOut: false, stdout: (marker ? `${marker}\n` : '') + df, stderr: '' };
  };
  return {
    sent,
    async exec(host: Host, command: string, opts: ExecOptions = {}) {
      sent.push({ host: host.name, command, sudo: !!opts.sudo });
      return answer(host, command);
    },
    async upload() {},
    async release() {},
    async close() {},
  };
}

describe('preflight commands per host', () => {
  it('without sudo: one command per host proves it reachable and reads its free space', async () => {
    const t = fakeHosts();
    const r = await preflight(playbook(false), { transport: t });
    expect(t.sent.filter((s) => s.host === 'ok-1')).toHaveLength(1);
    const cell = (host: string, check: string) => r.cells.find((c) => c.host === host && c.check === check);
    expect(cell('ok-1', 'reach')).toMatchObject({ ok: true, detail: 'ok' });
    expect(cell('ok-1', 'space')).toMatchObject({ ok: true, detail: '878 MiB free at /opt/app, need 1 MiB' });
    // A login shell that does not run the command: not reachable (with its reason), space not asked.
    expect(cell('nologin', 'reach')).toMatchObject({ ok: false, detail: 'exit 1: This account is currently not available.' });
    expect(cell('nologin', 'space')).toMatchObject({ ok: false, skipped: true, detail: 'not asked: host unreachable' });
    expect(r.ok).toBe(false);
  });

  it('with sudo: reach as the login user, sudo, then the space check through sudo', async () => {
    const t = fakeHosts();
    const r = await preflight(playbook(true), { transport: t });
    expect(t.sent.filter((s) => s.host === 'ok-1').map((s) => [s.command.includes('df -Pk') ? 'df' : s.command, s.sudo])).toEqual([
      ['true', false],
      ['true', true],
      ['df', true],
    ]);
    expect(r.cells.find((c) => c.host === 'ok-1' && c.check === 'space')).toMatchObject({ ok: true });
  });
});
