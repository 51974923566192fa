/**
 * What a person reads about a broken playbook, by exact text: zod's texts rewritten into the project's words,
 * "did you mean" for keys, provider names and types, step and check kinds and template names, one error per YAML
 * syntax problem with its hint, numbers where text is expected, unreadable files.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import { nearest } from '../../src/playbook/messages.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-messages-'));
let n = 0;
/** The problems of a playbook, as `LINE:COL: message` lines. */
function problems(yaml: string): string[] {
  const file = join(dir, `p${n++}.yaml`);
  writeFileSync(file, yaml);
  try {
    loadPlaybook(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.issues.map((i) => `${i.line}:${i.col}: ${i.message}`);
  }
  return [];
}
const HOSTS = 'hosts:\n  - { name: app-01, address: 10.0.0.1 }\n';
const head = `name: shop\nversion: "1.0"\n${HOSTS}`;

describe('playbook messages', () => {
  it('a missing version says what to write', () => {
    expect(problems(`name: shop\n${HOSTS}steps:\n  - run: "true"\n`)).toEqual(['1:1: version: required (quote it: version: "1.2.0")']);
  });

  it('a number where text is expected is an error telling to quote it', () => {
    expect(problems(`name: shop\nversion: 3.10\n${HOSTS}steps:\n  - run: "true"\n`)).toEqual([
      '2:10: version: 3.10 is read as a number; a text is expected here: quote it: version: "3.10"',
    ]);
    expect(problems(`${head}providers:\n  reg: { type: dubbo-zookeeper, connect: "zk:2181", application: 2 }\nsteps:\n  - drain: reg\n`)).toEqual([
      '6:66: providers.reg.application: 2 is read as a number; a text is expected here: quote it: application: "2"',
    ]);
  });

  it('did you mean: keys, enum values, step kinds, checks, template names', () => {
    expect(
      problems(
        `${head}waves: { concurency: 2 }\nonFailure: haltt\nsteps:\n  - drian: x\n  - run: "echo {{host.adress}}"\nverify:\n  - htp: { url: "http://x" }\n`,
      ),
    ).toEqual([
      '5:10: unknown key "concurency" in waves (did you mean "concurrency"?)',
      '6:12: onFailure: "haltt" is not one of halt, rollback-wave, rollback-all, freeze (did you mean "halt"?)',
      '8:5: steps[0]: unknown step kind "drian" (did you mean "drain"?)',
      '9:16: unknown template variable {{host.adress}} (did you mean {{host.address}}?) (known: release, version, group, wave, host.name, host.address, host.port, host.vars.*, host.labels.*)',
      '11:5: verify[0]: unknown check "htp" (did you mean "http"?)',
    ]);
  });

  it('an unknown key with nothing close lists the known ones', () => {
    expect(problems(`${head}waves: { speed: 2 }\nsteps:\n  - run: "true"\n`)).toEqual([
      '5:10: unknown key "speed" in waves (known: canary, size, concurrency, maxFailures, pause, by, order, maxPerZone, mode, inFlight, every)',
    ]);
  });

  it('unknown provider: the declared names, and the instance name when the type was written', () => {
    const providers =
      'providers:\n  mq: { type: rabbitmq, url: "http://mq:15672", username: u, password: { env: P }, closeConnections: true }\n  reg: { type: dubbo-zookeeper, connect: "zk:2181", application: order }\n';
    expect(problems(`${head}${providers}steps:\n  - drain: rabbitmq\n  - drain: rg\n  - drain: kafka\n`)).toEqual([
      '9:12: unknown provider "rabbitmq": "rabbitmq" is a provider type; use the name you declared it under: "mq"',
      '10:12: unknown provider "rg" (did you mean "reg"?) (declared: mq, reg)',
      '11:12: unknown provider "kafka" (declared: mq, reg)',
    ]);
  });

  it('a typo in a provider type is one error, not a second one at each use', () => {
    const lines = problems(`${head}providers:\n  mq: { type: rabbitmqq }\nsteps:\n  - drain: mq\n  - restore: mq\n`);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^6:15: unknown provider type "rabbitmqq" \(did you mean "rabbitmq"\?\) \(known: prometheus, .*, rocketmq.*\)$/);
  });

  it('zod texts are rewritten: types, ranges, empty strings, required nested keys', () => {
    expect(problems(`name: shop\nversion: "1.0"\nhosts: 12\nsteps:\n  - { run: "true", retries: -1 }\n  - { run: "" }\n`)).toEqual([
      '3:8: hosts: expected a list, got a number',
      '5:29: steps[0].retries: must be at least 0 (got -1)',
      '6:12: steps[1].run: must not be empty',
    ]);
    expect(problems(`${head}providers:\n  jobs: { type: lts-zookeeper, connect: "zk:2181" }\nsteps:\n  - drain: jobs\n`)).toEqual([
      '6:9: providers.jobs.cluster: required',
    ]);
  });

  it('one error per YAML syntax problem, with a hint', () => {
    expect(problems(`name: shop\nversion: "1"\nhosts:\n\t- { name: a, address: b }\nsteps:\n  - run: x\n`)).toEqual([
      '4:1: Tabs are not allowed as indentation; hint: indent with spaces, YAML does not allow tabs',
    ]);
    const braces = problems(`${head}steps:\n  - { name: x, run: echo {{host.name}} }\n`);
    expect(braces).toHaveLength(1);
    expect(braces[0]).toMatch(/^6:\d+: .*; hint: quote values that contain \{\{ \}\}, e\.g\. run: "curl http:\/\/\{\{host\.address\}\}:8080\/health"$/);
    expect(problems(`${head}steps:\n  - name: x\n    run: {{host.name}}\n`)).toEqual([
      '7:10: steps[0].run: expected a string, got a mapping; a value that starts with {{ must be quoted: "{{host.name}}"',
    ]);
  });

  it('a missing file: cannot read FILE: no such file', () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      expect(() => loadPlaybook('nope.yaml')).toThrow(/^nope\.yaml:1:1: cannot read nope\.yaml: no such file$/);
    } finally {
      process.chdir(cwd);
    }
  });

  it('nearest: a swap of two letters is one edit; nothing far is suggested', () => {
    expect(nearest('drian', ['run', 'drain'])).toBe('drain');
    expect(nearest('curl', ['run', 'http'])).toBeUndefined();
    expect(nearest('dubbo', ['dubbo-zookeeper', 'nacos'])).toBe('dubbo-zookeeper');
  });
});
