import { describe, expect, it } from 'vitest';
import { hostsSchema } from '../../src/playbook/schema.js';
import {
  addressMatch,
  canonicalHost,
  colonKey,
  consumerRisks,
  consumerView,
  effective,
  globMatch,
  hostMatches,
  parseDubboUrl,
  parseRuleText,
  serviceKey,
  serving,
  stateOf,
  stateText,
  stringMatch,
  toConfigurators,
  type Configurator,
  type DubboUrl,
} from '../../src/providers/registry/dubbo-rules.js';

// Cases derived from apache/dubbo 3.3 source; each names the class/method whose behaviour it mirrors.

const url = (s: string) => parseDubboUrl(s)!;
const P = 'dubbo://10.0.0.5:20880/com.acme.OrderService?application=order&interface=com.acme.OrderService&side=provider';
const PG = 'dubbo://10.0.0.5:20880/com.acme.OrderService?application=order&interface=com.acme.OrderService&group=online&version=1.0.0&side=provider';
const P6 = 'dubbo://0:0:0:0:0:0:0:1:20880/com.acme.OrderService?application=order&interface=com.acme.OrderService&side=provider';

const appRule = (configs: string, extra = '') =>
  parseRuleText(`configVersion: v2.7\nscope: application\nkey: order\nenabled: true\n${extra}configs:\n${configs}`, '/dubbo/config/dubbo/order.configurators')
    .configurators;
const svcRule = (key: string, configs: string, version = 'v2.7') =>
  parseRuleText(`configVersion: ${version}\nscope: service\nkey: ${key}\nenabled: true\nconfigs:\n${configs}`, `/dubbo/config/dubbo/${key}.configurators`)
    .configurators;
const ov = (s: string): Configurator => ({ url: url(s), source: s });
const eff = (u: string, r: { overrides?: Configurator[]; application?: Configurator[]; service?: Configurator[] }) =>
  effective(url(u), { overrides: r.overrides ?? [], application: r.application ?? [], service: r.service ?? [] });

describe('URLStrParser.parseURLBody: host and port', () => {
  it.each([
    // [url, host, port]
    ['dubbo://10.0.0.5:20880/x', '10.0.0.5', 20880],
    ['dubbo://0:0:0:0:0:0:0:1:20880/x', '0:0:0:0:0:0:0:1', 20880], // IPv6 as Dubbo registers it: no brackets, port after the last ':'
    ['dubbo://2001:db8::15:20880/x', '2001:db8::15', 20880],
    ['dubbo://fe80::1%eth0:20880/x', 'fe80::1%eth0', 20880], // '%' before the last ':' -> that ':' is the port
    ['override://fe80:0:0:0:894:aeec:f37d:23e1%en0/x', 'fe80:0:0:0:894:aeec:f37d:23e1%en0', 0], // '%' after the last ':' -> no port
    ['override://::1/x', ':', 1], // the quirk: an IPv6 address without port is cut at its last ':'
    ['dubbo://[::1]:20880/x', '[::1]', 20880],
    ['dubbo://app1.example.com:20880/x', 'app1.example.com', 20880],
    ['override://0.0.0.0/x', '0.0.0.0', 0],
  ])('%s', (s, host, port) => {
    expect(parseDubboUrl(s)).toMatchObject({ host, port });
  });
});

describe('URL.getServiceKey / getColonSeparatedKey', () => {
  it.each([
    [P, 'com.acme.OrderService', 'com.acme.OrderService::'],
    [PG, 'online/com.acme.OrderService:1.0.0', 'com.acme.OrderService:1.0.0:online'],
  ])('%s', (u, key, colon) => {
    expect(serviceKey(url(u))).toBe(key);
    expect(colonKey(url(u))).toBe(colon);
  });
});

describe('host identity (graywave side: playbook address and aliases vs. the registered host)', () => {
  it.each([
    ['0:0:0:0:0:0:0:1', ['::1'], true],
    ['2001:db8:0:0:0:0:0:15', ['2001:db8::15'], true],
    ['2001:db8::15', ['[2001:db8::15]'], true],
    ['fe80::1%eth0', ['fe80::1'], true],
    ['fe80::1%eth0', ['fe80::1%eth1'], false],
    ['APP1.example.com', ['10.0.0.5', 'app1.example.com'], true],
    ['app1.example.com', ['10.0.0.5'], false],
    ['10.0.0.5', ['::ffff:10.0.0.5'], true],
    ['10.0.0.50', ['10.0.0.5'], false],
  ])('%s ~ %j = %s', (reg, names, same) => {
    expect(hostMatches(reg, names)).toBe(same);
  });
  it('hosts take an optional aliases list (names or IPs the registry may use)', () => {
    expect(hostsSchema.parse([{ name: 'a', address: '10.0.0.5', aliases: ['app1.example.com', 'fe80::1%eth0'] }])[0]!.aliases).toEqual([
      'app1.example.com',
      'fe80::1%eth0',
    ]);
    expect(hostsSchema.safeParse([{ name: 'a', address: '10.0.0.5', aliases: ['bad name'] }]).success).toBe(false);
  });
  it('canonical forms', () => {
    expect(canonicalHost('0:0:0:0:0:0:0:1')).toBe(canonicalHost('::1'));
  });
});

describe('ConfigParser.parseConfigurators', () => {
  it('application scope: one override URL per address and service, providerAddresses for side: provider', () => {
    const [c] = appRule('  - addresses: ["10.0.0.5:20880"]\n    side: provider\n    parameters: {weight: 0}\n');
    expect(c!.url).toMatchObject({ protocol: 'override', host: '10.0.0.5', port: 20880, path: '*' });
    expect(c!.url.params).toMatchObject({
      application: 'order',
      side: 'provider',
      weight: '0',
      providerAddresses: '10.0.0.5:20880',
      configVersion: 'v2.7',
      enabled: 'true',
      category: 'appdynamicconfigurators',
    });
  });
  it('service scope key [group/]interface[:version] becomes path + group + version params', () => {
    const [c] = svcRule('online/com.acme.OrderService:1.0.0', '  - addresses: ["10.0.0.5"]\n    side: provider\n    parameters: {weight: 200}\n');
    expect(serviceKey(c!.url)).toBe('online/com.acme.OrderService:1.0.0');
  });
  it('a rule item without parameters makes Dubbo reject the whole rule', () => {
    expect(parseRuleText('scope: application\nkey: order\nconfigs:\n  - addresses: [0.0.0.0]\n', 'x').error).toMatch(/no parameters/);
  });
  it('JSON array of override URLs (parseJsonArray) and JSON object form', () => {
    const a = parseRuleText('["override://10.0.0.5:20880/*?weight=0&category=configurators"]', 'x');
    expect(a.form).toBe('json-urls');
    expect(eff(P, { application: a.configurators }).weight).toBe(0);
    const o = parseRuleText(
      JSON.stringify({
        configVersion: 'v2.7',
        scope: 'application',
        key: 'order',
        enabled: true,
        configs: [{ addresses: ['10.0.0.5:20880'], side: 'provider', parameters: { weight: 0 } }],
      }),
      'x',
    );
    expect(o.form).toBe('json');
    expect(eff(P, { application: o.configurators }).weight).toBe(0);
  });
  it('parseEnabled: a general item follows the whole rule; a typed item only its own enabled (absent = off)', () => {
    const item = '  - addresses: ["10.0.0.5:20880"]\n    side: provider\n    parameters: {weight: 0}\n';
    expect(
      eff(P, { application: parseRuleText(`scope: application\nkey: order\nconfigVersion: v2.7\nenabled: false\nconfigs:\n${item}`, 'x').configurators })
        .weight,
    ).toBe(100);
    const typed = '  - addresses: ["10.0.0.5:20880"]\n    side: provider\n    type: weight\n    parameters: {weight: 0}\n';
    expect(
      eff(P, {
        application: parseRuleText(
          `scope: application\nkey: order\nconfigVersion: v2.7\nenabled: false\nconfigs:\n${typed.replace('type: weight', 'type: weight\n    enabled: true')}`,
          'x',
        ).configurators,
      }).weight,
    ).toBe(0);
    expect(eff(P, { application: appRule(typed) }).weight).toBe(100);
  });
});

describe('AbstractConfigurator.configure (v2.7+): which items apply to a provider URL', () => {
  const one = (item: string) => eff(P, { application: appRule(item) });
  it.each([
    ['ip:port', '  - addresses: ["10.0.0.5:20880"]\n    side: provider\n    parameters: {weight: 0}\n', 0],
    ['ip only', '  - addresses: ["10.0.0.5"]\n    side: provider\n    parameters: {weight: 0}\n', 0],
    ['0.0.0.0 (no addresses)', '  - side: provider\n    parameters: {weight: 0}\n', 0],
    ['other port: providerAddresses mismatch', '  - addresses: ["10.0.0.5:20881"]\n    side: provider\n    parameters: {weight: 0}\n', 100],
    ['other host', '  - addresses: ["10.0.0.6:20880"]\n    side: provider\n    parameters: {weight: 0}\n', 100],
    ['no side: not applied (currentSide != configuratorSide)', '  - addresses: ["10.0.0.5:20880"]\n    parameters: {weight: 0}\n', 100],
    ['side consumer: not applied to the provider URL', '  - addresses: ["10.0.0.5:20880"]\n    side: consumer\n    parameters: {weight: 0}\n', 100],
    [
      'services: interface name matches an ungrouped provider',
      '  - addresses: ["10.0.0.5:20880"]\n    side: provider\n    services: [com.acme.OrderService]\n    parameters: {weight: 0}\n',
      0,
    ],
    ['services: other service', '  - addresses: ["10.0.0.5:20880"]\n    side: provider\n    services: [com.acme.Other]\n    parameters: {weight: 0}\n', 100],
    [
      'explicit providerAddresses win over addresses (0.0.0.0 host, provider pinned)',
      '  - addresses: ["0.0.0.0"]\n    providerAddresses: ["10.0.0.6:20880"]\n    side: provider\n    parameters: {weight: 0}\n',
      100,
    ],
    ['providerAddresses 0.0.0.0:<port>', '  - providerAddresses: ["0.0.0.0:20880"]\n    side: provider\n    parameters: {weight: 0}\n', 0],
  ])('%s', (_name, item, weight) => {
    expect(one(item).weight).toBe(weight);
  });

  it('isV27ConditionMatchOrUnset: full service key; an interface name does not match group=online,version=1.0.0', () => {
    const item = (s: string) => `  - addresses: ["10.0.0.5:20880"]\n    side: provider\n    services: [${s}]\n    parameters: {weight: 0}\n`;
    expect(eff(PG, { application: appRule(item('com.acme.OrderService')) }).weight).toBe(100);
    expect(eff(PG, { application: appRule(item('online/com.acme.OrderService:1.0.0')) }).weight).toBe(0);
  });

  it('application must equal the provider application (application rule of another app does nothing)', () => {
    const other = parseRuleText(
      'configVersion: v2.7\nscope: application\nkey: web\nconfigs:\n  - side: provider\n    parameters: {weight: 0}\n',
      'x',
    ).configurators;
    expect(eff(P, { application: other }).weight).toBe(100);
  });

  it('IPv6 provider: the rule address must be the host as registered, with the port', () => {
    expect(eff(P6, { application: appRule('  - addresses: ["0:0:0:0:0:0:0:1:20880"]\n    side: provider\n    parameters: {weight: 0}\n') }).weight).toBe(0);
    // "::1" without port parses as host ":" port 1 and providerAddresses "::1" is neither the address nor the host string.
    expect(eff(P6, { application: appRule('  - addresses: ["::1"]\n    side: provider\n    parameters: {weight: 0}\n') }).weight).toBe(100);
  });
});

describe('v3.0 match (ConditionMatch / AddressMatch / StringMatch / ParamMatch)', () => {
  const v3 = (match: string) =>
    parseRuleText(`configVersion: v3.0\nscope: application\nkey: order\nconfigs:\n  - side: provider\n    match:\n${match}\n    parameters: {weight: 0}\n`, 'x')
      .configurators;
  it.each([
    ['address cird', '      address: {cird: "10.0.0.0/24"}', 0],
    ['address cird miss', '      address: {cird: "10.0.1.0/24"}', 100],
    ['address wildcard glob', '      address: {wildcard: "10.0.0.*"}', 0],
    ['address exact', '      address: {exact: "10.0.0.5"}', 0],
    ['providerAddress exact ip:port', '      providerAddress: {exact: "10.0.0.5:20880"}', 0],
    ['service oneof prefix', '      service: {oneof: [{prefix: "com.acme."}]}', 0],
    ['service oneof exact miss', '      service: {oneof: [{exact: "com.acme.Other"}]}', 100],
    ['app', '      app: {oneof: [{exact: order}]}', 0],
    ['param regex', '      param: [{key: side, value: {regex: "prov.*"}}]', 0],
    ['param noempty on missing key', '      param: [{key: dubbo.tag, value: {noempty: "true"}}]', 100],
    ['all must hold', '      address: {exact: "10.0.0.5"}\n      app: {oneof: [{exact: web}]}', 100],
  ])('%s', (_n, match, weight) => {
    expect(eff(P, { application: v3(match) }).weight).toBe(weight);
  });
  it('a v2.7 rule ignores `match`', () => {
    const r = parseRuleText(
      'configVersion: v2.7\nscope: application\nkey: order\nconfigs:\n  - side: provider\n    match: {address: {exact: "1.2.3.4"}}\n    parameters: {weight: 0}\n',
      'x',
    ).configurators;
    expect(eff(P, { application: r }).weight).toBe(0);
  });
  it('helpers', () => {
    expect(globMatch('com.*.Svc', 'com.acme.Svc')).toBe(true);
    expect(addressMatch({ wildcard: '*' }, 'x')).toBe(true);
    expect(stringMatch({ empty: 'x' }, undefined)).toBe(true);
  });
});

describe('precedence: RegistryProtocol (provider) and RegistryDirectory (consumer)', () => {
  const drain = appRule('  - addresses: ["10.0.0.5:20880"]\n    side: provider\n    parameters: {weight: 0}\n');
  it('a service-scope weight 200 for the address wins over the application-scope weight 0', () => {
    const svc = svcRule('online/com.acme.OrderService:1.0.0', '  - addresses: ["10.0.0.5:20880"]\n    side: provider\n    parameters: {weight: 200}\n');
    const e = eff(PG, { application: drain, service: svc });
    expect(e.weight).toBe(200);
    expect(e.decidedBy).toMatch(/com\.acme\.OrderService:1\.0\.0.*configs\[0\]/);
  });
  it('a 2.6 override with weight > 0 is applied again by interface-level consumers, after the provider applied the rules', () => {
    const o = ov('override://10.0.0.5:20880/com.acme.OrderService?category=configurators&dynamic=false&enabled=true&weight=100');
    expect(eff(P, { overrides: [o], application: drain }).weight).toBe(100);
    // Application-level consumers (ServiceDiscoveryRegistryDirectory) apply no 2.6 overrides.
    expect(effective(url(P), { overrides: [o], application: drain, service: [] }, true).weight).toBe(0);
  });
  it('a 2.6 override without group/version does not apply to a grouped provider (service key mismatch)', () => {
    const o = ov('override://10.0.0.5:20880/com.acme.OrderService?category=configurators&enabled=true&disabled=true');
    expect(eff(PG, { overrides: [o] }).disabled).toBe(false);
    expect(eff(P, { overrides: [o] }).disabled).toBe(true);
  });
  it('Configurator.compareTo: within one rule, 0.0.0.0 items sort before host items, then by priority (stable)', () => {
    const r = appRule(
      '  - addresses: ["10.0.0.5:20880"]\n    side: provider\n    parameters: {weight: 0}\n  - addresses: ["0.0.0.0"]\n    side: provider\n    parameters: {weight: 100}\n',
    );
    expect(toConfigurators(r).map((c) => c.url.host)).toEqual(['0.0.0.0', '10.0.0.5']);
    expect(eff(P, { application: r }).weight).toBe(0);
    const pr = appRule(
      '  - addresses: ["10.0.0.5:20880"]\n    side: provider\n    parameters: {weight: 0, priority: 2}\n  - addresses: ["10.0.0.5"]\n    side: provider\n    parameters: {weight: 50}\n',
    );
    expect(eff(P, { application: pr }).weight).toBe(0);
  });
  it('Configurator.toConfigurators: an empty:// URL clears the list', () => {
    expect(toConfigurators([ov('empty://0.0.0.0/x?category=configurators'), ov('override://0.0.0.0/x?weight=0')])).toEqual([]);
  });
  it('AbstractConfigurator.configureDeprecated: port must match; without a port only 0.0.0.0 applies to providers', () => {
    expect(eff(P, { overrides: [ov('override://10.0.0.5:20881/com.acme.OrderService?weight=0')] }).weight).toBe(100);
    expect(eff(P, { overrides: [ov('override://10.0.0.5/com.acme.OrderService?weight=0')] }).weight).toBe(100);
    expect(eff(P, { overrides: [ov('override://0.0.0.0/com.acme.OrderService?weight=0')] }).weight).toBe(0);
    expect(eff(P, { overrides: [ov('override://10.0.0.5:20880/com.acme.OrderService?weight=0&enabled=false')] }).weight).toBe(100);
  });
  it('consumer-side items that can route to the provider are risks (side: consumer, providerAddresses)', () => {
    const svc = svcRule(
      'com.acme.OrderService',
      '  - addresses: ["0.0.0.0"]\n    side: consumer\n    providerAddresses: ["10.0.0.5:20880"]\n    parameters: {weight: 100}\n',
    );
    expect(consumerRisks(url(P), svc)).toHaveLength(1);
    const other = svcRule('com.acme.OrderService', '  - side: consumer\n    providerAddresses: ["10.0.0.6:20880"]\n    parameters: {weight: 100}\n');
    expect(consumerRisks(url(P), other)).toHaveLength(0);
  });
});

describe('RegistryDirectory.toInvokers / AbstractLoadBalance.getWeight', () => {
  it.each([
    [{}, { weight: 100, disabled: false }],
    [{ weight: '0' }, { weight: 0, disabled: false }],
    [{ weight: '-5' }, { weight: 0, disabled: false }],
    [{ disabled: 'TRUE' }, { weight: 100, disabled: true }],
    [{ enabled: 'false' }, { weight: 100, disabled: true }],
    [
      { enabled: 'false', disabled: 'false' },
      { weight: 100, disabled: false },
    ],
  ])('%j', (params, want) => {
    const u: DubboUrl = { protocol: 'dubbo', host: 'h', port: 1, path: 'x', params: params as Record<string, string> };
    expect(stateOf(u)).toMatchObject(want);
  });
});

describe('method-level weights: URLParam.getMethodParameter(Strict) + AbstractLoadBalance.getWeight + RegistryDirectory.toInvokers', () => {
  // A consumer's call of method m gets url.getMethodParameter(m, "weight", 100): `<m>.weight` when the URL has no
  // `methods` list or the list (a String.contains on the raw value) holds m, else `weight`; empty -> the next one;
  // max(w, 0). The methods a consumer calls are the `methods` list. Drained = no callable method has weight > 0.
  it.each([
    [
      'a method weight > 0 left by another rule keeps that method serving',
      { weight: '0', methods: 'get,list', 'get.weight': '200' },
      true,
      'weight 0, get.weight 200',
    ],
    ['method weight 0 too: drained', { weight: '0', methods: 'get,list', 'get.weight': '0' }, false, 'weight 0, get.weight 0'],
    [
      'every callable method has its own weight 0: the service weight reaches no call',
      { weight: '100', methods: 'get,list', 'get.weight': '0', 'list.weight': '0' },
      false,
      'get.weight 0, list.weight 0',
    ],
    ['a method not in `methods` is never called', { weight: '0', methods: 'get', 'put.weight': '100' }, false, 'weight 0'],
    ['no `methods` list: any `<m>.weight` counts', { weight: '0', 'get.weight': '5' }, true, 'weight 0, get.weight 5'],
    ['`getAll` is called, `get.weight` is not its parameter', { weight: '0', methods: 'getAll', 'get.weight': '5' }, false, 'weight 0'],
    ['an empty method weight falls back to weight', { weight: '0', methods: 'get', 'get.weight': '' }, false, 'weight 0'],
    ['disabled wins over any weight', { disabled: 'true', methods: 'get', 'get.weight': '100' }, false, 'disabled'],
    ['two dots are not a method weight (URLParam keeps one method level)', { weight: '0', 'a.b.weight': '5' }, false, 'weight 0'],
    ['a negative method weight is 0', { weight: '0', methods: 'get', 'get.weight': '-3' }, false, 'get.weight 0'],
    ['an unparseable weight (Integer.parseInt throws) is never read as drained', { weight: 'abc' }, true, 'weight 100'],
    ['an unparseable method weight neither', { weight: '0', methods: 'get', 'get.weight': '0x0' }, true, 'get.weight 100'],
  ])('%s', (_name, params, routes, text) => {
    const u: DubboUrl = { protocol: 'dubbo', host: 'h', port: 1, path: 'x', params: params as Record<string, string> };
    const e = stateOf(u);
    expect(serving(e)).toBe(routes);
    expect(stateText(e)).toBe(text);
  });

  it("a service-scope `<method>.weight: 200` for the address beats graywave's application-scope weight 0 for that method", () => {
    const drain = appRule('  - addresses: ["10.0.0.5:20880"]\n    side: provider\n    parameters: {weight: 0}\n');
    const svc = svcRule('com.acme.OrderService', '  - addresses: ["10.0.0.5:20880"]\n    side: provider\n    parameters: {get.weight: 200}\n');
    const e = eff(`${P}&methods=get,list`, { application: drain, service: svc });
    expect(serving(e)).toBe(true);
    expect(e.methods).toEqual({ get: 200 });
    expect(e.decidedBy).toMatch(/com\.acme\.OrderService\.configurators configs\[0\]/);
    // The same method set to 0 by graywave's item (after the other one in the rule): drained.
    const both = appRule(
      '  - addresses: ["10.0.0.5:20880"]\n    side: provider\n    parameters: {get.weight: 200}\n  - addresses: ["10.0.0.5:20880"]\n    side: provider\n    parameters: {weight: 0, get.weight: 0}\n',
    );
    expect(serving(eff(`${P}&methods=get,list`, { application: both }))).toBe(false);
  });

  it('consumer-side items that give a method weight > 0 are risks', () => {
    const svc = svcRule('com.acme.OrderService', '  - side: consumer\n    providerAddresses: ["10.0.0.5:20880"]\n    parameters: {get.weight: 10}\n');
    expect(consumerRisks(url(P), svc)).toHaveLength(1);
  });
});

describe('consumerView: what consumers route on now (RegistryDirectory / ServiceDiscoveryRegistryDirectory.overrideWithConfigurator)', () => {
  const drain = appRule('  - addresses: ["10.0.0.5:20880"]\n    side: provider\n    parameters: {weight: 0}\n');
  it("the provider application's rule is applied by the provider only: until it re-registered, consumers see its old URL", () => {
    expect(serving(consumerView(url(P), { overrides: [], application: drain, service: [] }))).toBe(true);
    expect(serving(consumerView(url(`${P}&weight=0&providerAddresses=10.0.0.5:20880`), { overrides: [], application: drain, service: [] }))).toBe(false);
    // The steady state (after the re-export) is drained.
    expect(serving(eff(P, { application: drain }))).toBe(false);
  });
  it('the service rule and (interface level) the 2.6 overrides are applied by consumers themselves', () => {
    const svc = svcRule('com.acme.OrderService', '  - addresses: ["10.0.0.5:20880"]\n    side: provider\n    parameters: {weight: 0}\n');
    expect(serving(consumerView(url(P), { overrides: [], application: [], service: svc }))).toBe(false);
    const o = ov('override://10.0.0.5:20880/com.acme.OrderService?category=configurators&dynamic=false&enabled=true&weight=0');
    expect(serving(consumerView(url(P), { overrides: [o], application: [], service: [] }))).toBe(false);
    expect(serving(consumerView(url(P), { overrides: [o], application: [], service: [] }, true))).toBe(true);
    // A re-registered weight=0 does not hide a 2.6 override with weight > 0 that consumers apply after it.
    const up = ov('override://10.0.0.5:20880/com.acme.OrderService?category=configurators&dynamic=false&enabled=true&weight=100');
    expect(consumerView(url(`${P}&weight=0`), { overrides: [up], application: [], service: [] })).toMatchObject({ weight: 100, decidedBy: up.source });
  });
});
