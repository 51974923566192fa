import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { loadPlaybook } from '../../src/playbook/load.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-dup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('duplicate host names', () => {
  it('are reported together with the other problems of the host list, each at its line', () => {
    const file = join(dir, 'p.yaml');
    writeFileSync(
      file,
      'name: x\nversion: "1"\nhosts:\n  - { name: a, address: 10.0.0.1 }\n  - { name: a, address: 10.0.0.2 }\n  - { name: b, address: 7 }\nsteps:\n  - run: "true"\n',
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
      expect.arrayContaining([
        expect.stringMatching(/^5: duplicate host name "a" \(first at hosts\[0\]\)/),
        expect.stringMatching(/^6: hosts\[2\]\.address: /),
      ]),
    );
  });
});
