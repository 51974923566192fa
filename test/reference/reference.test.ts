/**
 * The reference generated from code: docs/reference.md and schema/playbook.schema.json are what `npm run docs`
 * writes now (fails when stale); every registered type documents itself and its example validates; `graywave
 * explain` prints one; the JSON Schema (checked by ajv, a JSON-Schema validator, as the oracle) accepts every
 * example and fixture playbook and rejects what the loader rejects at the key level; `graywave init` writes a
 * starter playbook that validates both ways.
 */
import { Ajv } from 'ajv';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadPlaybook } from '../../src/playbook/load.js';
import { playbookJsonSchema, trainJsonSchema } from '../../src/reference/json-schema.js';
import { loadTrain } from '../../src/playbook/train.js';
import { entries, explainText, protocolsMarkdown, referenceMarkdown } from '../../src/reference/reference.js';
import { starterPlaybook } from '../../src/cli/reference.js';
import { cli, requireBuiltCli, ROOT, tempDirs } from '../helpers/cli.js';

requireBuiltCli();
const temp = tempDirs('gw-ref-');
const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(playbookJsonSchema());
const validateTrain = ajv.compile(trainJsonSchema());
/** A train file: a mapping with `apps:` (src/playbook/release-file.ts openReleaseFile). */
const isTrain = (text: string) => /^apps:/m.test(text);

/** Every playbook and train file in playbooks/ (and examples/) and every YAML fixture under test/ and fixtures/. */
function playbookFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(join(dir, d.name)) : /\.ya?ml$/.test(d.name) ? [join(dir, d.name)] : []));
  return [
    ...walk(join(ROOT, 'playbooks')),
    ...[...walk(join(ROOT, 'test')), ...walk(join(ROOT, 'fixtures'))].filter(
      (f) => /^name:/m.test(readFileSync(f, 'utf8')) && !/@@\w+@@/.test(readFileSync(f, 'utf8')),
    ),
  ]; // @@SLOT@@: a test's template, not a playbook yet
}

const HEAD = 'name: ex\nversion: "1.0"\nhosts:\n  - { name: app-01, address: 10.0.0.11 }\n  - { name: app-02, address: 10.0.0.12 }\n';
const indent = (text: string, n: number) =>
  text
    .split('\n')
    .map((l) => ' '.repeat(n) + l)
    .join('\n');

describe('reference', () => {
  it('docs/reference.md and schema/playbook.schema.json are current (run `npm run docs` when this fails)', () => {
    expect(readFileSync(join(ROOT, 'docs/reference.md'), 'utf8')).toBe(referenceMarkdown() + '\n');
    expect(readFileSync(join(ROOT, 'docs/protocols.md'), 'utf8')).toBe(protocolsMarkdown() + '\n');
    expect(readFileSync(join(ROOT, 'schema/playbook.schema.json'), 'utf8')).toBe(JSON.stringify(playbookJsonSchema(), null, 2) + '\n');
    expect(readFileSync(join(ROOT, 'schema/train.schema.json'), 'utf8')).toBe(JSON.stringify(trainJsonSchema(), null, 2) + '\n');
  });

  it('every registered type documents itself: summary, what it was checked against, an example that validates', () => {
    const dir = temp();
    const problems: string[] = [];
    for (const e of entries()) {
      if (!e.doc?.summary || !e.doc.checkedAgainst || !e.doc.example) {
        problems.push(`${e.kind} ${e.type}: no doc`);
        continue;
      }
      let yaml: string;
      const monitor = '  prom: { type: prometheus, url: "http://prom:9090" }\n';
      const dubbo =
        '  dubbo: { type: dubbo-zookeeper, connect: "zk:2181", application: order }\n  nacos: { type: nacos, url: "http://nacos:8848", services: [order] }\n';
      if (e.kind === 'provider' || e.kind === 'monitor') yaml = `${HEAD}providers:\n  x:\n${indent(e.doc.example, 4)}\nsteps:\n  - run: "true"\n`;
      else if (e.kind === 'step') yaml = `${HEAD}providers:\n${monitor}${dubbo}steps:\n${indent(e.doc.example, 2)}\n`;
      else if (e.kind === 'gate') yaml = `${HEAD}providers:\n${monitor}steps:\n  - run: "true"\nverify:\n${indent(e.doc.example, 2)}\n`;
      else if (e.kind === 'routing') yaml = `${HEAD}providers:\n${dubbo}steps:\n  - run: "true"\nrouting:\n  -\n${indent(e.doc.example, 4)}\n`;
      else yaml = `${HEAD}state:\n${indent(e.doc.example, 2)}\nsteps:\n  - run: "true"\n`;
      const file = join(dir, `${e.kind}-${e.type}.yaml`);
      writeFileSync(file, yaml);
      try {
        loadPlaybook(file);
      } catch (err) {
        problems.push(`${e.kind} ${e.type}: ${(err as Error).message}`);
      }
      if (!validate(parse(yaml))) problems.push(`${e.kind} ${e.type} (JSON Schema): ${ajv.errorsText(validate.errors)}`);
    }
    expect(problems).toEqual([]);
  });

  it('every option of every type (nested ones too) has a description', () => {
    const missing: string[] = [];
    const walk = (e: ReturnType<typeof entries>[number], rows: (typeof e.options)[number][], prefix: string) => {
      for (const r of rows) {
        if (!r.description?.trim()) missing.push(`${e.kind} ${e.type}: ${prefix}${r.key}`);
        walk(e, r.children ?? [], `${prefix}${r.key}.`);
      }
    };
    let options = 0;
    for (const e of entries()) {
      walk(e, e.options, '');
      options += e.options.length;
    }
    expect(options).toBeGreaterThan(200);
    expect(missing).toEqual([]);
    // The words reach what a user reads: explain and the generated reference.
    expect(explainText(entries().find((e) => e.type === 'nacos')!)).toContain('  apiVersion: v1 | v2, default v1 — Open API to use');
    expect(referenceMarkdown()).toContain(
      '| `tls.insecureSkipVerify` | true \\| false |  | `false` | Accept any server certificate (warned once per run); never together with ca. |',
    );
  });

  it('graywave explain TYPE prints its options with type, default and requiredness; an unknown type is exit 2', async () => {
    const r = await cli(['explain', 'dubbo-zookeeper']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('dubbo-zookeeper (provider)\n  providers: { NAME: { type: dubbo-zookeeper, … } }\n');
    expect(r.stdout).toContain('  application (required): string — Provider application name');
    expect(r.stdout).toContain('  root: string, default /dubbo — ');
    expect(r.stdout).toContain('checked against: real ZooKeeper 3.8');
    const bad = await cli(['explain', 'rocketmqq']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('graywave: explain: unknown type "rocketmqq" (did you mean "rocketmq"?)');
  });
});

describe('JSON Schema', () => {
  it('accepts every example and fixture playbook (train files: the train schema), and a playbook schema line names the schema file that fits', () => {
    const files = playbookFiles();
    expect(files.length).toBeGreaterThanOrEqual(8);
    const trains = files.filter((f) => isTrain(readFileSync(f, 'utf8')));
    expect(trains.map((f) => f.slice(ROOT.length + 1))).toContain('fixtures/train/train.yaml');
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      const v = isTrain(text) ? validateTrain : validate;
      expect(v(parse(text)), `${f}: ${ajv.errorsText(v.errors)}`).toBe(true);
      const line = /^# yaml-language-server: \$schema=(\S+)/.exec(text);
      if (line && !/^https?:/.test(line[1]!)) expect(line[1], f).toMatch(isTrain(text) ? /train\.schema\.json$/ : /playbook\.schema\.json$/);
      if (line && line[1]!.startsWith('.')) expect(existsSync(join(dirname(f), line[1]!)), `${f}: ${line[1]} exists`).toBe(true);
    }
    // A train file is not a playbook (no hosts/steps) and a playbook is not a train (no apps): each schema says so.
    for (const f of trains) expect(validate(parse(readFileSync(f, 'utf8'))), f).toBe(false);
    expect(validateTrain(parse(readFileSync(join(ROOT, 'fixtures/train/order.yaml'), 'utf8')))).toBe(false);
  });

  it('every playbook in playbooks/ names the schema for editors', () => {
    for (const f of playbookFiles().filter((x) => x.startsWith(join(ROOT, 'playbooks') + '/')))
      expect(readFileSync(f, 'utf8'), f).toMatch(/^# yaml-language-server: \$schema=/);
  });

  it('the train schema rejects what the train loader rejects at the key level: a misspelt app key, hosts in a train, a misspelt waves key, a bad provider', () => {
    const dir = temp();
    for (const app of ['a', 'b']) writeFileSync(join(dir, `${app}.yaml`), HEAD.replace('name: ex', `name: ${app}`) + 'steps:\n  - run: "true"\n');
    const TRAIN = 'name: t\nversion: "1.0"\n';
    const good = `${TRAIN}apps:\n  - { name: a, playbook: ./a.yaml }\n  - { name: b, playbook: ./b.yaml, after: [a], deploy: false }\nwaves: { canary: 1, size: 50%, maxFailures: 1 }\nverify:\n  - run: "true"\nswitchover: { at: 50%, steps: [ { name: web, run: "true" } ] }\n`;
    writeFileSync(join(dir, 'good.yaml'), good);
    expect(() => loadTrain(join(dir, 'good.yaml'))).not.toThrow();
    expect(validateTrain(parse(good)), ajv.errorsText(validateTrain.errors)).toBe(true);
    const bad = [
      `${TRAIN}apps:\n  - { name: a, playbok: ./a.yaml }\n`,
      `${TRAIN}apps:\n  - { name: a, playbook: ./a.yaml }\nhosts:\n  - { name: x, address: 10.0.0.1 }\n`,
      `${TRAIN}apps:\n  - { name: a, playbook: ./a.yaml }\nwaves: { concurency: 2 }\n`,
      `${TRAIN}apps:\n  - { name: a, playbook: ./a.yaml }\nproviders:\n  mq: { type: rocketmqq }\n`,
      `${TRAIN}apps: []\n`,
    ];
    for (const [i, y] of bad.entries()) {
      expect(validateTrain(parse(y)), y).toBe(false);
      writeFileSync(join(dir, `bad-${i}.yaml`), y);
      expect(() => loadTrain(join(dir, `bad-${i}.yaml`)), y).toThrow();
    }
  });

  it('rejects what the loader rejects at the key level: a misspelt key, an unknown provider type, a provider option of another type', () => {
    const bad = [
      `${HEAD}waves: { concurency: 2 }\nsteps:\n  - run: "true"\n`,
      `${HEAD}providers:\n  mq: { type: rocketmqq }\nsteps:\n  - run: "true"\n`,
      `${HEAD}providers:\n  reg: { type: dubbo-zookeeper, connect: "zk:2181", application: a, services: [x] }\nsteps:\n  - run: "true"\n`,
      `${HEAD}steps:\n  - drian: reg\n`,
    ];
    for (const y of bad) expect(validate(parse(y)), y).toBe(false);
  });

  it('graywave schema prints it; --train prints the train schema (schema/train.schema.json)', async () => {
    const r = await cli(['schema']);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(JSON.stringify(playbookJsonSchema())));
    expect(r.stdout).toBe(readFileSync(join(ROOT, 'schema/playbook.schema.json'), 'utf8'));
    const t = await cli(['schema', '--train']);
    expect(t.code).toBe(0);
    expect(t.stdout).toBe(readFileSync(join(ROOT, 'schema/train.schema.json'), 'utf8'));
    expect(JSON.parse(t.stdout).$id).toBe('https://graywave.dev/schema/train.schema.json');
    const one = await cli(['schema', '--train', '--json']);
    expect(one.stdout.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(one.stdout)).toEqual(JSON.parse(t.stdout));
  });
});

describe('example playbooks', () => {
  it('each example in playbooks/examples validates and plans', async () => {
    const dir = join(ROOT, 'playbooks/examples');
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(files.sort()).toEqual(['f5-dubbo.yaml', 'finance-platform.yaml', 'hotfix.yaml', 'nacos-gray.yaml', 'set-based-gray.yaml']);
    for (const f of files) {
      const v = await cli(['validate', join(dir, f)]);
      expect(v.code, `${f}: ${v.stderr}`).toBe(0);
      const p = await cli(['plan', join(dir, f)]);
      expect(p.code, `${f}: ${p.stderr}`).toBe(0);
      expect(p.stdout).toContain('dry run: nothing was contacted');
    }
    const finance = (await cli(['plan', join(dir, 'finance-platform.yaml')])).stdout;
    expect(finance).toContain('wave 1 (canary, 1 host): pay-01');
    expect(finance).toContain(
      'writes: ZooKeeper zk1:2181,zk2:2181,zk3:2181: weight=0 for payment-service on 10.20.0.11:* in /dubbo/config/dubbo/payment-service.configurators',
    );
    expect(finance).toContain('writes: ZooKeeper zk1:2181,zk2:2181,zk3:2181: creates /LTS/payment_cluster/OFFLINE/10.20.0.11');
    expect(finance).toContain('switchover (GREEN carries ≥ 51% of the fleet): web-to-green');
    // Each scenario plans as what it is for.
    const plans = Object.fromEntries(
      await Promise.all(['nacos-gray', 'set-based-gray'].map(async (n) => [n, (await cli(['plan', join(dir, `${n}.yaml`), '--json'])).stdout] as const)),
    );
    const json = (n: string) => JSON.parse(plans[n]!) as { waves: { hosts: string[] }[] };
    const nacos = json('nacos-gray');
    expect(readFileSync(join(dir, 'nacos-gray.yaml'), 'utf8')).toMatch(
      /type: nacos-rule[\s\S]*format: "x-gray-group=GREEN->\{\{greenVersion\}\};\{\{blueVersion\}\}=\{\{blueWeight\}\}/,
    );
    expect(nacos.waves.map((w) => w.hosts.length)).toEqual([1, 2, 1]);
    const f5 = (await cli(['plan', join(dir, 'f5-dubbo.yaml')])).stdout;
    expect(f5).toContain(
      'writes: F5 https://bigip.example.com: PATCH /mgmt/tm/ltm/pool/~Common~gateway_pool/members/~Common~10.40.0.11:8443 session=user-disabled',
    );
    expect(f5).toContain('routing dubbo-gray (dubbo-tag)');
    expect(json('set-based-gray').waves.map((w) => w.hosts)).toEqual([
      ['ord-s10-a1', 'ord-s10-b1'],
      ['ord-s9-a1', 'ord-s9-a2'],
      ['ord-s9-a3', 'ord-s9-b1'],
      ['ord-s1-a1', 'ord-s1-b1'],
    ]);
    const hotfix = (await cli(['plan', join(dir, 'hotfix.yaml')])).stdout;
    expect(hotfix).toContain('HOTFIX: INC-4711: null pointer in checkout — a canary, then one wave');
    expect(hotfix).toContain('wave 2 (5 hosts): ord-02, ord-03, ord-04, ord-05, ord-06');
    expect(hotfix).toContain('soak (query, skipped on hotfix)');
    expect(hotfix).toContain('  verify: smoke, error-rate (skipped on hotfix: soak)\n');
  }, 180_000);

  it('the README links every example with one line on when to use it', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    for (const f of readdirSync(join(ROOT, 'playbooks/examples')).filter((x) => x.endsWith('.yaml'))) {
      const lines = readme.split('\n').filter((l) => l.startsWith(`- [playbooks/examples/${f}](playbooks/examples/${f}): `));
      expect(lines, f).toHaveLength(1);
      expect(lines[0], f).toMatch(/ — (start here|for) /);
    }
  });
});

describe('graywave init', () => {
  it('--stack dubbo-zookeeper,rocketmq,lts,prometheus,nginx writes a commented playbook that validates and plans', async () => {
    const dir = temp();
    const r = await cli(['init', '--stack', 'dubbo-zookeeper,rocketmq,lts,prometheus,nginx'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(join(dir, 'playbook.yaml'), 'utf8');
    expect(text).toMatch(/^# yaml-language-server: \$schema=/);
    expect(text).toContain('  - drain: dubbo\n  - drain: rocketmq\n  - drain: lts\n  - drain: nginx\n  - waitDrained: { monitor: prometheus');
    expect((await cli(['validate', 'playbook.yaml'], { cwd: dir })).code).toBe(0);
    expect(validate(parse(text)), ajv.errorsText(validate.errors)).toBe(true);
    expect((await cli(['plan', 'playbook.yaml'], { cwd: dir })).code).toBe(0);
    expect((await cli(['init'], { cwd: dir })).code).toBe(2); // never over an existing file
  });

  it('every provider type alone gives a valid starter', () => {
    const dir = temp();
    for (const e of entries().filter((x) => x.kind === 'provider' || x.kind === 'monitor')) {
      const f = join(dir, `${e.type}.yaml`);
      writeFileSync(f, starterPlaybook([e.type]));
      expect(() => loadPlaybook(f), e.type).not.toThrow();
    }
  });
});
