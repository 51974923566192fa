import YAML from 'yaml';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  addConfigItem,
  addTagAddresses,
  drainItem,
  drainUrls,
  dubboZookeeper,
  javaUrlDecode,
  javaUrlEncode,
  parseDubboUrl,
  removeConfigItem,
  removeTagAddresses,
  serviceKey,
} from '../../src/providers/registry/dubbo-zookeeper.js';
import { elasticjobZookeeper } from '../../src/providers/scheduler/elasticjob-zookeeper.js';
import { ltsZookeeper, runningCount } from '../../src/providers/scheduler/lts-zookeeper.js';
import { genericZookeeper } from '../../src/providers/generic/zookeeper.js';

describe('javaUrlEncode (java.net.URLEncoder, UTF-8)', () => {
  it.each([
    ['dubbo://10.0.0.5:20880/com.foo.BarService?a=1&b=x,y', 'dubbo%3A%2F%2F10.0.0.5%3A20880%2Fcom.foo.BarService%3Fa%3D1%26b%3Dx%2Cy'],
    ['a b', 'a+b'],
    ["keep.-*_ but !'()~", 'keep.-*_+but+%21%27%28%29%7E'],
    ['中文', '%E4%B8%AD%E6%96%87'],
    ['😀', '%F0%9F%98%80'],
    ['lone \uD800 surrogate', 'lone+%3F+surrogate'],
    ['%+', '%25%2B'],
  ])('%s', (input, encoded) => {
    expect(javaUrlEncode(input)).toBe(encoded);
  });

  it('decodes what it encodes, and + as space', () => {
    const s = "dubbo://h:1/i?methods=a,b&x=hello world!'()~*";
    expect(javaUrlDecode(javaUrlEncode(s))).toBe(s);
    expect(javaUrlDecode('a+b%2Bc')).toBe('a b+c');
  });
});

describe('Dubbo URLs', () => {
  it('parses host, port, interface and params; service key includes group and version', () => {
    const u = parseDubboUrl('dubbo://10.0.0.5:20880/com.foo.BarService?application=bar&group=g1&version=1.0.0&weight=100&methods=a,b')!;
    expect(u).toMatchObject({ protocol: 'dubbo', host: '10.0.0.5', port: 20880, path: 'com.foo.BarService' });
    expect(u.params).toMatchObject({ application: 'bar', methods: 'a,b', weight: '100' });
    expect(serviceKey(u)).toBe('g1/com.foo.BarService:1.0.0');
    expect(parseDubboUrl('override://0.0.0.0/com.foo.X?weight=0')).toMatchObject({ host: '0.0.0.0', port: 0 });
    expect(parseDubboUrl('not a url')).toBeUndefined();
  });
});

const FOREIGN = `# ops rule
configVersion: v2.7
scope: application
key: app
enabled: true
configs:
- addresses: ["10.0.0.9:20880"]
  side: provider
  parameters: {timeout: 1000}
`;

describe('configurator rule merging', () => {
  const item = drainItem(['10.0.0.5:20880'], 'weight');

  it('appends the item, keeps foreign items and comments, records the original, and gives back the exact bytes', () => {
    const drained = addConfigItem(FOREIGN, 'app', item, 'rule')!;
    expect(drained).toMatch(/^# graywave-baseline: \S+\n/);
    expect(drained).toContain('# ops rule');
    const parsed = YAML.parse(drained.replace(/^.*\n/, ''));
    expect(parsed.configs).toEqual([{ addresses: ['10.0.0.9:20880'], side: 'provider', parameters: { timeout: 1000 } }, item]);
    expect(addConfigItem(drained, 'app', item, 'rule')).toBeUndefined(); // already there
    expect(removeConfigItem(drained, 'app', item, 'rule')).toEqual({ kind: 'write', text: FOREIGN });
  });

  it('two hosts: the first restore keeps the other host, the last one gives back the exact original', () => {
    const other = drainItem(['10.0.0.6:20880'], 'weight');
    const both = addConfigItem(addConfigItem(FOREIGN, 'app', item, 'rule')!, 'app', other, 'rule')!;
    const one = removeConfigItem(both, 'app', item, 'rule')!;
    expect(one.kind).toBe('write');
    const text = (one as { text: string }).text;
    expect(YAML.parse(text.replace(/^.*\n/, '')).configs).toHaveLength(2);
    expect(removeConfigItem(text, 'app', other, 'rule')).toEqual({ kind: 'write', text: FOREIGN });
  });

  it('a rule that did not exist is deleted again; a rule someone changed meanwhile is kept with the change', () => {
    const created = addConfigItem(undefined, 'app', item, 'rule')!;
    expect(YAML.parse(created.replace(/^.*\n/, ''))).toMatchObject({ configVersion: 'v2.7', scope: 'application', key: 'app', enabled: true });
    expect(removeConfigItem(created, 'app', item, 'rule')).toEqual({ kind: 'delete' });
    const drained = addConfigItem(FOREIGN, 'app', item, 'rule')!;
    const edited = drained.replace('timeout: 1000', 'timeout: 2000');
    const r = removeConfigItem(edited, 'app', item, 'rule') as { kind: 'write'; text: string };
    expect(r.text).toContain('timeout: 2000');
    expect(r.text).not.toContain('weight: 0');
  });

  it('refuses rules it cannot read or that are switched off', () => {
    expect(() => addConfigItem('configs: [unclosed', 'app', item, 'rule X')).toThrow(/rule X is not a YAML rule/);
    expect(() => addConfigItem(FOREIGN.replace('enabled: true', 'enabled: false'), 'app', item, 'rule X')).toThrow(/switched off/);
  });

  it('disable mode and restricted services', () => {
    expect(drainItem(['a:1'], 'disable', ['com.foo.S'])).toEqual({
      addresses: ['a:1'],
      side: 'provider',
      services: ['com.foo.S'],
      parameters: { disabled: true },
    });
  });
});

describe('rule forms and foreign rewrites', () => {
  const item = drainItem(['10.0.0.5:20880'], 'weight');
  it('a JSON object rule stays JSON (one line stays one line), and gives the same meaning back', () => {
    const json = JSON.stringify({
      configVersion: 'v2.7',
      scope: 'application',
      key: 'app',
      configs: [{ addresses: ['10.0.0.9:20880'], side: 'provider', parameters: { timeout: 1 } }],
    });
    const added = addConfigItem(json, 'app', item, 'r')!;
    expect(added).not.toContain('\n');
    expect(JSON.parse(added).configs).toHaveLength(2);
    expect(removeConfigItem(added, 'app', item, 'r')).toEqual({ kind: 'write', text: json });
  });
  it('a JSON list of override URLs gets URLs (drainUrls), never an object', () => {
    const list = JSON.stringify(['override://10.0.0.9:20880/*?weight=50']);
    expect(() => addConfigItem(list, 'app', item, 'r')).toThrow(/JSON list of override URLs/);
    const urls = drainUrls(['10.0.0.5:20880'], 'disable', ['g/com.foo.S:1.0']);
    expect(urls).toEqual(['override://10.0.0.5:20880/com.foo.S?group=g&version=1.0&category=configurators&dynamic=false&enabled=true&disabled=true']);
    const added = addConfigItem(list, 'app', urls, 'r')!;
    expect(removeConfigItem(added, 'app', urls, 'r')).toEqual({ kind: 'write', text: list });
  });
  it('a rule rewritten by another tool without the baseline line: only the item goes, the rest of the text stays as written', () => {
    const foreign =
      'key: app   # ops\nscope: application\nconfigs:\n  - addresses: [ "10.0.0.9:20880" ]\n    side: provider\n    parameters: { timeout: 7 }\n  - side: provider\n    addresses: ["10.0.0.5:20880"]\n    parameters: {weight: 0}\n  - addresses: [ "10.0.0.8:20880" ]   # keep me\n    side: provider\n    parameters: { timeout: 8 }\n';
    const r = removeConfigItem(foreign, 'app', item, 'r') as { kind: 'write'; text: string };
    expect(r.text).toBe(foreign.replace('  - side: provider\n    addresses: ["10.0.0.5:20880"]\n    parameters: {weight: 0}\n', ''));
    expect(r.text).not.toMatch(/graywave-baseline/);
  });
  it('a JSON rule switched off (enabled: false) is refused with a clear message', () => {
    expect(() => addConfigItem(JSON.stringify({ key: 'app', enabled: false, configs: [] }), 'app', item, 'rule Y')).toThrow(/rule Y is switched off/);
  });
});

describe('tag-router merging', () => {
  const TAGS = 'key: app\nenabled: true\ntags:\n- name: blue\n  addresses: ["10.0.0.9:20880"]\n';
  it('adds to a new tag, removes again, original bytes back', () => {
    const r = addTagAddresses(TAGS, 'app', 'GREEN', ['10.0.0.5:20880'], 'tags');
    expect(r).toMatchObject({ added: ['10.0.0.5:20880'], createdTag: true });
    expect(YAML.parse(r.text!.replace(/^.*\n/, '')).tags[1]).toEqual({ name: 'GREEN', addresses: ['10.0.0.5:20880'] });
    expect(addTagAddresses(r.text, 'app', 'GREEN', ['10.0.0.5:20880'], 'tags')).toMatchObject({ text: undefined, added: [] });
    expect(removeTagAddresses(r.text!, 'app', 'GREEN', ['10.0.0.5:20880'], false, 'tags')).toEqual({ kind: 'write', text: TAGS });
  });
  it('an existing tag keeps its foreign addresses', () => {
    const r = addTagAddresses(TAGS, 'app', 'blue', ['10.0.0.5:20880'], 'tags');
    expect(r.createdTag).toBe(false);
    const back = removeTagAddresses(r.text!, 'app', 'blue', ['10.0.0.5:20880'], false, 'tags');
    expect(back).toEqual({ kind: 'write', text: TAGS });
  });
});

describe('options', () => {
  it('are strict and pin the issue names', () => {
    expect(dubboZookeeper.options.safeParse({ connect: 'zk:2181', application: 'a', stlye: 'x' }).success).toBe(false);
    const o = dubboZookeeper.options.parse({ connect: 'zk1:2181,zk2:2181', application: 'order-service' });
    expect(o).toMatchObject({ root: '/dubbo', style: 'config-rule', mode: 'weight', allowDrainLast: false, connectTimeout: 5000, sessionTimeout: 30000 });
    expect(dubboZookeeper.options.safeParse({ connect: 'zk', application: 'a', style: 'override' }).success).toBe(false);
    expect(ltsZookeeper.options.safeParse({ connect: 'zk', cluster: 'c', runningCheck: { command: 'x', http: 'y' } }).success).toBe(false);
    expect(ltsZookeeper.options.safeParse({ connect: 'zk', cluster: 'c', marker: 'relative' }).success).toBe(false);
    expect(elasticjobZookeeper.options.safeParse({ connect: 'zk', namespace: 'n', job: ['x'] }).success).toBe(false);
    expect(genericZookeeper.options.parse({ connect: 'zk', path: '/x/{{host.name}}' })).toMatchObject({ mode: 'create', value: '' });
  });
  it('the README documents the app-side LTS contract: the marker the TaskTracker must watch (the default the provider uses)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const at = readme.indexOf('**LTS: what the TaskTracker must watch.**');
    expect(at, 'README section on the LTS TaskTracker contract').toBeGreaterThan(0);
    const section = readme.slice(at, readme.indexOf('\n**', at + 10));
    // The same default as the provider's (test/integration/zookeeper-schedulers.test.ts: /LTS/order_cluster/OFFLINE/<ip>).
    expect(section).toContain('`/LTS/<cluster>/OFFLINE/<address>`');
    expect(section).toContain('marker: /LTS/order_cluster/OFFLINE/{{host.address}}');
    expect(section).toMatch(/pulls no new jobs/);
    expect(section).toMatch(/start-up/);
    expect(section).toMatch(/deleted it pulls again/);
  });
  it('running-jobs parsing never turns garbage into 0', () => {
    expect(runningCount(' 0\n')).toBe(0);
    expect(runningCount('3')).toBe(3);
    expect(runningCount('')).toBeUndefined();
    expect(runningCount('none')).toBeUndefined();
    expect(runningCount('{"data":{"running":0}}', 'data.running')).toBe(0);
    expect(runningCount('{"data":{}}', 'data.running')).toBeUndefined();
    expect(runningCount('<html>', 'data.running')).toBeUndefined();
  });
});
