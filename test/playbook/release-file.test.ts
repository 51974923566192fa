import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import { openReleaseFile } from '../../src/playbook/release-file.js';
import { copyFixtureDir } from '../helpers/fixtures.js';

/** openReleaseFile: one read and parse tells a train from a playbook and serves the loader (issue #20). */
const dir = copyFixtureDir('train', mkdtempSync(join(tmpdir(), 'gw-release-file-')));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const problems = (load: () => unknown): string => {
  try {
    load();
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error('loaded without a problem');
};

describe('openReleaseFile', () => {
  it('a mapping with apps: is a train; anything else a playbook', () => {
    const train = openReleaseFile(join(dir, 'train.yaml'));
    expect(train.kind).toBe('train');
    expect(train.kind === 'train' && train.load().apps.map((a) => a.name)).toEqual(['bfe', 'order', 'account']);
    const pb = openReleaseFile(join(dir, 'bfe.yaml'));
    expect(pb.kind).toBe('playbook');
    expect(pb.kind === 'playbook' && pb.load().name).toBe('bfe');
    // A flow mapping and a quoted key are a train too (what the YAML says, not how it is written).
    writeFileSync(join(dir, 'flow.yaml'), '{ name: t, version: "1", "apps": [{ name: bfe, playbook: ./bfe.yaml }] }\n');
    expect(openReleaseFile(join(dir, 'flow.yaml')).kind).toBe('train');
    // `apps` below the top level, or as a value, is not.
    writeFileSync(join(dir, 'nested.yaml'), 'name: t\nversion: "1"\nvars: { apps: 1 }\nhosts: [apps]\n');
    expect(openReleaseFile(join(dir, 'nested.yaml')).kind).toBe('playbook');
  });

  it('the first load builds from the parse that told the kind; a second one reads the file again', () => {
    const file = join(dir, 'again.yaml');
    writeFileSync(file, readFileSync(join(dir, 'bfe.yaml'), 'utf8'));
    const rf = openReleaseFile(file);
    writeFileSync(file, readFileSync(join(dir, 'bfe.yaml'), 'utf8').replace('name: bfe', 'name: changed'));
    expect(rf.kind === 'playbook' && rf.load().name).toBe('bfe');
    expect(rf.kind === 'playbook' && rf.load().name).toBe('changed');
  });

  it("a file that cannot be read, is not YAML or is too large: a playbook, with the playbook loader's own message", () => {
    const cases: [string, string | undefined][] = [
      ['missing.yaml', undefined],
      ['broken.yaml', 'name: t\napps: [\n'],
      ['big.yaml', `apps: []\n# ${'x'.repeat(1024 * 1024)}\n`],
    ];
    for (const [name, text] of cases) {
      const file = join(dir, name);
      if (text !== undefined) writeFileSync(file, text);
      const rf = openReleaseFile(file);
      expect(rf.kind, name).toBe('playbook');
      const message = problems(rf.load);
      expect(message, name).toBe(problems(() => loadPlaybook(file)));
      expect(message.startsWith(`${file}:`), message).toBe(true);
    }
  });
});
