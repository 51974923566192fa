/** `state:` is checked through the state backend registry (src/journal/backends.ts), each problem at its position. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPlaybook } from '../../src/playbook/load.js';
import { findStateBackendType, stateBackendTypes } from '../../src/journal/backends.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-state-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const head = 'name: r\nversion: "1"\nhosts: [{ name: a, address: 127.0.0.1 }]\nsteps:\n  - run: "true"\n';
const load = (state: string) => {
  const f = join(dir, 'p.yaml');
  writeFileSync(f, head + state);
  return () => loadPlaybook(f);
};

describe('state:', () => {
  it('knows the registered backends, one line each', () => {
    expect(stateBackendTypes.map((b) => b.type)).toEqual(['file', 'etcd', 'zookeeper']);
    expect(findStateBackendType('redis')).toBeUndefined();
  });

  it('an unknown type names the known ones, at the type', () => {
    expect(load('state: { type: redis }\n')).toThrow(/p\.yaml:6:16: unknown state type "redis" \(use file, etcd, zookeeper\)$/);
  });

  it("options are checked by the backend's own schema, at their position", () => {
    expect(load('state: { type: etcd, endpoints: [], prefix: graywave }\n')).toThrow(/p\.yaml:6:\d+: state\.endpoints: needs at least one entry/);
    expect(load('state: { type: zookeeper, connect: "zk1:2181", bogus: 1 }\n')).toThrow(/p\.yaml:6:\d+: unknown key "bogus" in state/);
    expect(load('state: { type: file, dir: x }\n')).toThrow(/unknown key "dir" in state \(type: file takes no options\)/);
  });

  it('a valid state is kept as written', () => {
    expect(load('state: { type: zookeeper, connect: "zk1:2181" }\n')().state).toEqual({ type: 'zookeeper', connect: 'zk1:2181' });
  });
});
