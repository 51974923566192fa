import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, EXIT } from '../../src/errors.js';
import { loadPlaybook } from '../../src/playbook/load.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-tls-pb-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Line numbers below are those of this text (1-based). */
const PLAYBOOK = `name: r
version: 1.0.0
hosts:
  - { name: app-01, address: 10.0.0.5 }
providers:
  bigip:
    type: f5
    url: https://bigip.example
    pool: order_pool
    member: "{{host.address}}:8080"
    username: { env: F5_USER }
    password: { env: F5_PASSWORD }
    tls:
      ca: ./certs/f5-ca.pem
  prom:
    type: prometheus
    url: https://prom.example
    tls:
      ca: [./certs/f5-ca.pem, ./certs/prom-ca.pem]
steps:
  - drain: bigip
verify:
  - http:
      url: https://app.example/health
      tls:
        cert: ./certs/client.pem
        key: { file: ./certs/client.key }
`;

function load(text: string, name: string): ReturnType<typeof loadPlaybook> {
  const f = join(dir, name);
  writeFileSync(f, text);
  return loadPlaybook(f);
}

describe('tls files in a playbook', () => {
  it('a missing file is a playbook error at its key (FILE:LINE:COL, exit 2), for providers and gates alike', () => {
    let err: unknown;
    try {
      load(PLAYBOOK, 'missing.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(EXIT.usage);
    expect(EXIT.usage).toBe(2);
    const f = join(dir, 'missing.yaml');
    expect((err as ConfigError).message.split('\n')).toEqual([
      `${f}:14:11: providers.bigip.tls.ca: cannot read ./certs/f5-ca.pem (no such file)`,
      `${f}:19:12: providers.prom.tls.ca[0]: cannot read ./certs/f5-ca.pem (no such file)`,
      `${f}:19:31: providers.prom.tls.ca[1]: cannot read ./certs/prom-ca.pem (no such file)`,
      `${f}:26:15: verify[0].http.tls.cert: cannot read ./certs/client.pem (no such file)`,
      `${f}:27:22: verify[0].http.tls.key.file: cannot read ./certs/client.key (no such file)`,
    ]);
  });

  it('with the files in place (relative to the playbook) it loads; a directory or an unreadable file is still an error', () => {
    mkdirSync(join(dir, 'certs'), { recursive: true });
    for (const f of ['f5-ca.pem', 'prom-ca.pem', 'client.pem', 'client.key']) writeFileSync(join(dir, 'certs', f), 'PEM\n');
    const pb = load(PLAYBOOK, 'present.yaml');
    expect(pb.providers.bigip!.options).toMatchObject({ tls: { ca: './certs/f5-ca.pem' } });
    expect(pb.verify[0]!.params).toMatchObject({ tls: { cert: './certs/client.pem', key: { file: './certs/client.key' }, insecureSkipVerify: false } });

    rmSync(join(dir, 'certs', 'prom-ca.pem'));
    mkdirSync(join(dir, 'certs', 'prom-ca.pem'));
    const messages: string[] = [];
    try {
      load(PLAYBOOK, 'dir.yaml');
    } catch (e) {
      messages.push(...(e as ConfigError).issues.map((i) => i.message));
    }
    expect(messages).toEqual(['providers.prom.tls.ca[1]: cannot read ./certs/prom-ca.pem (not a regular file)']);

    // Permission checks mean nothing to root (it reads any file): only asserted for other users.
    if (process.getuid?.() !== 0) {
      rmSync(join(dir, 'certs', 'prom-ca.pem'), { recursive: true });
      writeFileSync(join(dir, 'certs', 'prom-ca.pem'), 'PEM\n');
      chmodSync(join(dir, 'certs', 'client.key'), 0o000);
      expect(() => load(PLAYBOOK, 'perm.yaml')).toThrow('verify[0].http.tls.key.file: cannot read ./certs/client.key (permission denied)');
    }
  });

  it('tls option shape errors are reported at their key like any other option', () => {
    const bad = PLAYBOOK.replace('      ca: ./certs/f5-ca.pem\n', '      ca: ./certs/f5-ca.pem\n      insecureSkipVerify: yes-please\n      verify: false\n');
    let msg = '';
    try {
      load(bad, 'shape.yaml');
    } catch (e) {
      msg = (e as Error).message;
    }
    const f = join(dir, 'shape.yaml');
    expect(msg).toContain(`${f}:15:27: providers.bigip.tls.insecureSkipVerify: expected a boolean, got a string`);
    expect(msg).toContain(`${f}:16:7: unknown key "verify" in providers.bigip.tls`);
  });
});
