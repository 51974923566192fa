import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { loadPlaybook } from '../../src/playbook/load.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-host-ssh-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const playbook = (hosts: string, transport = '{ type: ssh, user: deploy, loginShell: true, sudo: { password: { env: SUDO_PW } } }') =>
  `name: x\nversion: "1"\ntransport: ${transport}\nhosts:\n${hosts}\nsteps:\n  - run: "true"\n`;

describe("per-host ssh: settings and the transport's loginShell / sudo password", () => {
  it('are read as written', () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(
      file,
      playbook(
        '  - { name: a, address: 10.0.0.1 }\n  - { name: b, address: 10.0.0.2, ssh: { user: ops, port: 2222, identityFile: ~/.ssh/ops, jumpHost: "j1,ops@j2:22" } }',
      ),
    );
    const pb = loadPlaybook(file);
    expect(pb.hosts[0]!.ssh).toBeUndefined();
    expect(pb.hosts[1]!.ssh).toEqual({ user: 'ops', port: 2222, identityFile: '~/.ssh/ops', jumpHost: 'j1,ops@j2:22' });
    expect(pb.transport).toMatchObject({ type: 'ssh', loginShell: true, sudo: { password: { env: 'SUDO_PW' } } });
  });

  it('an unknown key, a bad port, or a sudo password written in the playbook is a config error at its line', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      playbook(
        '  - { name: a, address: 10.0.0.1, ssh: { usr: ops } }\n  - { name: b, address: 10.0.0.2, ssh: { port: 70000 } }',
        '{ type: ssh, sudo: { password: hunter2 } }',
      ),
    );
    let err: unknown;
    try {
      loadPlaybook(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const issues = (err as ConfigError).issues.map((i) => `${i.line}: ${i.message}`);
    expect(issues).toEqual(
      expect.arrayContaining([expect.stringMatching(/^5: .*usr/), expect.stringMatching(/^6: hosts\[1\]\.ssh\.port/), expect.stringMatching(/^3: .*sudo/)]),
    );
    expect(issues.join('\n')).not.toContain('hunter2');
  });
});
