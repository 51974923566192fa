/**
 * A table of malformed and hostile playbooks and inventories. Each must give exit 2 with `FILE:LINE:COL: message`
 * lines, never a stack trace, and never run a command: every playbook carries a canary step that would create a
 * marker file, and the marker must not exist afterwards.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import { cli, hasStackTrace, requireBuiltCli, tempDirs } from '../helpers/cli.js';

requireBuiltCli();
const temp = tempDirs('gw-hostile-');

const CANARY = `  - name: canary\n    run: "touch CANARY"`;
const HOSTS = `hosts:\n  - { name: app-01, address: 10.0.0.1 }\n  - { name: app-02, address: 10.0.0.2 }`;
const ok = (extra = '', hosts = HOSTS) => `name: shop\nversion: "1.0"\n${hosts}\nsteps:\n${CANARY}\n${extra}`;
const withHost = (h: string) => ok('', `hosts:\n  - ${h}\n  - { name: app-02, address: 10.0.0.2 }`);
const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
for (let i = 1; i < 6; i++)
  bomb.push(
    `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
      .fill(`*${String.fromCharCode(96 + i)}`)
      .join(',')}]`,
  );

interface Case {
  name: string;
  yaml: string;
  /** Files beside the playbook (inventories). */
  files?: Record<string, string>;
  /** The message (one of the lines) must match. */
  message: RegExp;
  /** Line (and column) of that message, when pinned; the file defaults to the playbook. */
  line?: number;
  col?: number;
  file?: string;
}

const CASES: Case[] = [
  { name: 'unterminated quote', yaml: 'name: shop\nversion: "1.0\nsteps: []\n', message: /Missing closing "quote/ },
  {
    name: 'bad indentation',
    yaml: `${ok()}\n  bad: [1,\n`,
    message: /(^|: )"bad" is indented 2 spaces, unlike the mapping it continues: all mapping items must start at the same column$/,
    line: 10,
    col: 3,
  },
  { name: 'tab indentation', yaml: `name: shop\nversion: "1"\n${HOSTS}\nsteps:\n${CANARY}\n\tbad: 1\n`, message: /Tabs are not allowed/, line: 9 },
  { name: 'duplicate key', yaml: `${ok()}\nname: other\n`, message: /unique/, line: 10 },
  { name: 'two YAML documents', yaml: `${ok()}\n---\nname: x\n`, message: /multiple documents/ },
  { name: 'empty file', yaml: '', message: /a playbook is a YAML mapping/, line: 1 },
  { name: 'a list, not a mapping', yaml: '- a\n- b\n', message: /a playbook is a YAML mapping/ },
  { name: 'unknown top-level key', yaml: ok('hostz: []'), message: /unknown key "hostz"/, line: 9 },
  { name: 'unknown host key', yaml: withHost('{ name: app-01, address: 10.0.0.1, adress: x }'), message: /unknown key "adress"/, line: 4 },
  { name: 'unknown step key', yaml: ok('  - { name: s2, run: "true", retry: 3 }'), message: /unknown key "retry"/, line: 9 },
  { name: 'name missing', yaml: `version: "1"\n${HOSTS}\nsteps:\n${CANARY}\n`, message: /(^|: )name: required \(e\.g\. name: order-service\)$/ },
  { name: 'version is a list', yaml: ok().replace('version: "1.0"', 'version: [1, 2]'), message: /version/, line: 2 },
  { name: 'hosts is a number', yaml: ok('', 'hosts: 12'), message: /(^|: )hosts: expected a list, got a number$/, line: 3 },
  { name: 'steps is a string', yaml: `name: shop\nversion: "1"\n${HOSTS}\nsteps: "touch CANARY"\n`, message: /steps/, line: 6 },
  { name: 'retries is a string', yaml: ok('    retries: many'), message: /retries/, line: 9 },
  { name: 'timeout is not a duration', yaml: ok('    timeout: soon'), message: /not a duration/, line: 9 },
  { name: 'port out of range', yaml: withHost('{ name: app-01, address: 10.0.0.1, port: 70000 }'), message: /port/, line: 4 },
  {
    name: 'duplicate host name',
    yaml: ok('', `hosts:\n  - { name: app-01, address: 10.0.0.1 }\n  - { name: app-01, address: 10.0.0.2 }`),
    message: /duplicate host name "app-01"/,
    line: 5,
  },
  { name: 'zero hosts', yaml: ok('', 'hosts: []'), message: /host list is empty/, line: 3 },
  { name: 'no hosts at all', yaml: `name: shop\nversion: "1"\nsteps:\n${CANARY}\n`, message: /no hosts/ },
  { name: 'no steps', yaml: `name: shop\nversion: "1"\n${HOSTS}\nsteps: []\n`, message: /at least one step/ },
  {
    name: '100% canary',
    yaml: ok('waves: { canary: 2 }'),
    message: /canary of 2 host\(s\) is the whole fleet \(100%\): it leaves nothing to widen to/,
    line: 9,
  },
  { name: 'canary larger than the fleet', yaml: ok('waves: { canary: 3 }'), message: /canary of 3 host\(s\) is more than the fleet \(2 hosts\)/, line: 9 },
  { name: 'negative canary', yaml: ok('waves: { canary: -1 }'), message: /canary/, line: 9 },
  { name: 'negative size', yaml: ok('waves: { size: -3 }'), message: /size/, line: 9 },
  { name: 'negative percentage', yaml: ok("waves: { size: '-25%' }"), message: /percentage/, line: 9 },
  { name: 'zero percent', yaml: ok("waves: { size: '0%' }"), message: /between 0% \(exclusive\) and 100%/, line: 9 },
  { name: 'over 100 percent', yaml: ok("waves: { size: '250%' }"), message: /between 0% \(exclusive\) and 100%/, line: 9 },
  { name: 'fractional host count', yaml: ok('waves: { size: 1.5 }'), message: /integer/, line: 9 },
  { name: 'negative maxFailures', yaml: ok('waves: { maxFailures: -1 }'), message: /maxFailures/, line: 9 },
  { name: 'zero concurrency', yaml: ok('waves: { concurrency: 0 }'), message: /concurrency/, line: 9 },
  { name: 'unknown provider reference', yaml: ok('  - drain: nacos'), message: /unknown provider "nacos"/, line: 9 },
  { name: 'unknown provider type', yaml: ok('providers:\n  reg: { type: carrier-pigeon }'), message: /unknown provider type "carrier-pigeon"/, line: 10 },
  { name: 'unknown transport', yaml: ok('transport: { type: telnet }'), message: /unknown transport type "telnet"/, line: 9 },
  { name: 'two actions in a step', yaml: ok('  - { name: s2, run: "true", drain: x }'), message: /one action per step/, line: 9 },
  { name: 'no action in a step', yaml: ok('  - { name: s2 }'), message: /no action/, line: 9 },
  { name: 'duplicate step name', yaml: ok('  - { name: canary, run: "true" }'), message: /duplicate step name "canary"/, line: 9 },
  { name: 'unknown template variable', yaml: ok('  - { name: s2, run: "echo {{hostname}}" }'), message: /unknown template variable \{\{hostname\}\}/, line: 9 },
  {
    name: 'misspelt host template',
    yaml: ok('  - name: s2\n    run: "echo {{ host.adress }}"'),
    message: /unknown template variable \{\{host.adress\}\}/,
    line: 10,
  },
  {
    name: 'injection through a host name: $( )',
    yaml: withHost('{ name: "a$(touch CANARY)", address: 10.0.0.1 }'),
    message: /host names may only use letters, digits/,
    line: 4,
  },
  {
    name: 'injection through a host name: backticks',
    yaml: withHost('{ name: "a`touch CANARY`", address: 10.0.0.1 }'),
    message: /host names may only use/,
    line: 4,
  },
  {
    name: 'injection through a host name: quotes',
    yaml: withHost(`{ name: "a'; touch CANARY; '", address: 10.0.0.1 }`),
    message: /host names may only use/,
    line: 4,
  },
  {
    name: 'injection through a host name: newline',
    yaml: withHost('{ name: "a\\ntouch CANARY", address: 10.0.0.1 }'),
    message: /host names may only use/,
    line: 4,
  },
  {
    name: 'injection through an address',
    yaml: withHost('{ name: app-01, address: "10.0.0.1;touch CANARY" }'),
    message: /not a host name or IP address/,
    line: 4,
  },
  {
    name: 'template in a host var',
    yaml: withHost('{ name: app-01, address: 10.0.0.1, vars: { x: "{{release_secret}}" } }'),
    message: /unknown template variable/,
    line: 4,
  },
  {
    name: 'path traversal in the release name (state dir)',
    yaml: ok().replace('name: shop', 'name: ../../etc'),
    message: /release names may only use/,
    line: 1,
  },
  {
    name: 'path traversal in a host name (log file)',
    yaml: withHost('{ name: ../../../tmp/x, address: 10.0.0.1 }'),
    message: /host names may only use/,
    line: 4,
  },
  {
    name: 'path traversal through the version (artifact path)',
    yaml: ok().replace('version: "1.0"', 'version: ../../../etc/shadow'),
    message: /versions may only use/,
    line: 2,
  },
  {
    name: 'path traversal in deploy.to',
    yaml: ok('  - deploy: { artifact: "build/app-{{version}}.tgz", to: /opt/app/../../etc }'),
    message: /deploy.to: .* contains a "\.\." segment/,
    line: 9,
  },
  {
    name: 'path traversal in deploy.release',
    yaml: ok('  - deploy: { artifact: app.tgz, to: /opt/app, release: ../../../root }'),
    message: /deploy.release: .* must name one directory/,
    line: 9,
  },
  { name: 'relative deploy target', yaml: ok('  - deploy: { artifact: app.tgz, to: opt/app }'), message: /absolute path/, line: 9 },
  {
    name: 'inventory pointing at /etc/passwd',
    yaml: `name: shop\nversion: "1"\ninventory: ../../../../../../../etc/passwd\nsteps:\n${CANARY}\n`,
    message:
      /(^|: )not a host list: an inventory file is a YAML list of hosts \(\{ name, address \} each\) or a mapping with hosts:, and this file reads as plain text$/,
    line: 1,
    col: 1,
    file: '/etc/passwd',
  },
  {
    name: 'missing inventory',
    yaml: `name: shop\nversion: "1"\ninventory: nowhere.yaml\nsteps:\n${CANARY}\n`,
    message: /(^|: )cannot read \S*nowhere\.yaml: no such file$/,
    file: 'nowhere.yaml',
  },
  {
    name: 'inventory with a hostile host name',
    yaml: `name: shop\nversion: "1"\ninventory: inv.yaml\nsteps:\n${CANARY}\n`,
    files: { 'inv.yaml': 'hosts:\n  - { name: ok-1, address: 10.0.0.1 }\n  - { name: "$(touch CANARY)", address: 10.0.0.2 }\n' },
    message: /host names may only use/,
    line: 3,
    file: 'inv.yaml',
  },
  {
    name: 'inventory with duplicate hosts',
    yaml: `name: shop\nversion: "1"\ninventory: inv.yaml\nsteps:\n${CANARY}\n`,
    files: { 'inv.yaml': '- { name: a, address: 10.0.0.1 }\n- { name: a, address: 10.0.0.2 }\n' },
    message: /duplicate host name "a"/,
    line: 2,
    file: 'inv.yaml',
  },
  {
    name: 'inventory that is bad YAML',
    yaml: `name: shop\nversion: "1"\ninventory: inv.yaml\nsteps:\n${CANARY}\n`,
    files: { 'inv.yaml': 'hosts:\n  - { name: a, address: [\n' },
    message: /(^|: )this \[ is never closed: its \] is missing \(the file ends first\)$/,
    line: 2,
    col: 25,
    file: 'inv.yaml',
  },
  {
    name: 'inventory command in a playbook with an unknown key (the command must not run)',
    yaml: `name: shop\nversion: "1"\ninventory: { command: "touch CANARY; echo '[{name: a, address: 10.0.0.1}]'" }\nbogus: 1\nsteps:\n  - run: "true"\n`,
    message: /unknown key "bogus"/,
    line: 4,
  },
  {
    name: 'inventory command in a playbook with a bad step (the command must not run)',
    yaml: `name: shop\nversion: "1"\ninventory: { command: "touch CANARY; echo '[{name: a, address: 10.0.0.1}]'" }\nsteps:\n  - run: "echo {{hostname}}"\n`,
    message: /unknown template variable \{\{hostname\}\}/,
    line: 5,
  },
  {
    name: 'registry inventory in a broken playbook (the registry is not asked)',
    yaml: `name: shop\nversion: "1"\ninventory: { provider: reg, service: order }\nproviders:\n  reg: { type: nacos, url: "http://127.0.0.1:9", services: [order] }\nsteps:\n  - { run: "true", retry: 3 }\n`,
    message: /unknown key "retry"/,
    line: 7,
  },
  { name: 'both hosts and inventory', yaml: ok('inventory: inv.yaml'), files: { 'inv.yaml': '[]\n' }, message: /either hosts or inventory/, line: 9 },
  {
    name: 'huge file',
    yaml: ok() + '\n' + '# padding padding padding padding padding padding padding\n'.repeat(20_000),
    message: /limited to 1048576/,
    line: 1,
  },
  { name: 'YAML alias bomb (billion laughs)', yaml: `${bomb.join('\n')}\n${ok()}`, message: /alias|resource exhaustion/i },
  {
    name: 'deeply nested flow collections',
    yaml: `${ok()}\nx: ${'['.repeat(3000)}${']'.repeat(3000)}\n`,
    message: /(^|: )collections nested too deeply to read \(3000 levels of \[ and \{ here\); a playbook needs a few$/,
    line: 10,
    col: 4,
  },
  { name: 'unresolved custom tag', yaml: ok().replace('name: shop', 'name: !!js/function shop'), message: /tag/i, line: 1 },
  { name: 'switchover at 0%', yaml: ok('switchover: { at: 0%, steps: [ { run: "true" } ] }'), message: /switchover.at must be between/, line: 9 },
  {
    name: 'switchover using a host template',
    yaml: ok('switchover: { at: 50%, steps: [ { run: "echo {{host.name}}" } ] }'),
    message: /\{\{host\.\*\}\} is not available here/,
    line: 9,
  },
  { name: 'verify entry without a check', yaml: ok('verify:\n  - { name: smoke, curl: x }'), message: /no check/, line: 10 },
  { name: 'bad onFailure', yaml: ok('onFailure: shrug'), message: /onFailure/, line: 9 },
];

describe(`${CASES.length} malformed or hostile playbooks`, () => {
  it('has at least 40 cases', () => expect(CASES.length).toBeGreaterThanOrEqual(40));

  const prepare = (c: Case) => {
    const dir = temp();
    const file = join(dir, 'playbook.yaml');
    writeFileSync(file, c.yaml);
    for (const [name, text] of Object.entries(c.files ?? {})) writeFileSync(join(dir, name), text);
    const expectedFile = c.file ? (c.file.startsWith('/') ? c.file : join(dir, c.file)) : file;
    return { dir, file, expectedFile };
  };

  it('the loader reports each with FILE:LINE:COL (in process)', () => {
    for (const c of CASES) {
      const { file, expectedFile } = prepare(c);
      let err: unknown;
      try {
        loadPlaybook(file);
      } catch (e) {
        err = e;
      }
      expect(err, c.name).toBeInstanceOf(ConfigError);
      const issues = (err as ConfigError).issues;
      expect(issues.length, c.name).toBeGreaterThan(0);
      const hit = issues.find((i) => c.message.test(i.message) && i.file === expectedFile);
      expect(hit, `${c.name}: ${JSON.stringify(issues)}`).toBeDefined();
      if (c.line !== undefined) expect(hit!.line, `${c.name}: ${JSON.stringify(hit)}`).toBe(c.line);
      if (c.col !== undefined) expect(hit!.col, `${c.name}: ${JSON.stringify(hit)}`).toBe(c.col);
      for (const i of issues) {
        expect(i.line, c.name).toBeGreaterThanOrEqual(1);
        expect(i.col, c.name).toBeGreaterThanOrEqual(1);
      }
    }
  });

  it('`graywave run` exits 2 with FILE:LINE:COL lines, no stack trace, and the canary never runs', async () => {
    const results: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < CASES.length) {
        const c = CASES[next++]!;
        const { dir, file, expectedFile } = prepare(c);
        const r = await cli(['run', file, '--yes', '--json'], { cwd: dir });
        const where = `${c.name}:\n${r.stderr}${r.stdout}`;
        expect(r.code, where).toBe(2);
        expect(hasStackTrace(r.stderr + r.stdout), where).toBe(false);
        const lines = r.stderr.trim().split('\n');
        for (const l of lines) expect(l, where).toMatch(/^.+:\d+:\d+: \S/);
        const at = c.line !== undefined && c.col !== undefined ? `${c.line}:${c.col}: ` : '';
        expect(
          lines.some((l) => l.startsWith(`${expectedFile}:${at}`) && c.message.test(l)),
          where,
        ).toBe(true);
        expect(existsSync(join(dir, 'CANARY')), `${c.name}: the canary step ran`).toBe(false);
        expect(existsSync(join(dir, '.graywave')), `${c.name}: state was written`).toBe(false);
        results.push(c.name);
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    expect(results.length).toBe(CASES.length);
  }, 240_000);

  it('`graywave validate` takes several files and reports every problem of each', async () => {
    const a = prepare(CASES.find((c) => c.name === 'duplicate host name')!);
    const b = prepare(CASES.find((c) => c.name === 'unknown template variable')!);
    const good = prepare({ name: 'good', yaml: ok(), message: /./ });
    const r = await cli(['validate', a.file, good.file, b.file]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`${good.file}: ok`);
    expect(r.stderr).toMatch(new RegExp(`^${a.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:\\d+: duplicate host name`, 'm'));
    expect(r.stderr).toMatch(/:9:\d+: unknown template variable \{\{hostname\}\}/);
    expect((await cli(['validate', good.file])).code).toBe(0);
  });

  it('FILE is the path as given: a relative playbook path (and its inventory beside it) stays relative', async () => {
    const a = prepare(CASES.find((c) => c.name === 'duplicate host name')!);
    const r = await cli(['validate', 'playbook.yaml'], { cwd: a.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^playbook\.yaml:5:\d+: duplicate host name "app-01"/m);
    const inv = prepare(CASES.find((c) => c.name === 'inventory with duplicate hosts')!);
    const r2 = await cli(['validate', 'playbook.yaml'], { cwd: inv.dir });
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/^inv\.yaml:2:\d+: duplicate host name "a"/m);
  });
});
