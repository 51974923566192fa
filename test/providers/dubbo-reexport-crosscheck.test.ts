import { describe, expect, it } from 'vitest';
import { effective, parseDubboUrl, parseRuleText, stateOf, stateText } from '../../src/providers/registry/dubbo-rules.js';
import { formatUrl, parseUrl, reexported } from '../integration/helpers/dubbo-provider-sim.mjs';

/*
 * Two independent readings of Dubbo's provider pass (RegistryProtocol.OverrideListener: 2.6 overrides, application
 * rule, service rule): graywave's dubbo-rules.ts, and the tests' simulated provider (dubbo-provider-sim.mjs, which the
 * integration tests use to re-export like a Dubbo 2.7+ provider). They must agree on what the provider re-registers;
 * when they do not, one of them misreads Dubbo's source.
 */

const P = 'dubbo://10.0.0.5:20880/com.acme.OrderService?application=order&interface=com.acme.OrderService&methods=get,list&release=3.3.0&side=provider';
const PG =
  'dubbo://10.0.0.5:20880/com.acme.OrderService?application=order&group=online&interface=com.acme.OrderService&methods=get,list&release=3.3.0&side=provider&version=1.0.0';
const app = (configs: string, extra = '') => `configVersion: v2.7\nscope: application\nkey: order\n${extra}configs:\n${configs}`;
const svc = (key: string, configs: string) => `configVersion: v2.7\nscope: service\nkey: ${key}\nenabled: true\nconfigs:\n${configs}`;
const item = (addr: string, params: string, more = '') => `- addresses: ["${addr}"]\n  side: provider\n${more}  parameters: {${params}}\n`;

describe('the simulated provider re-exports what graywave computes as the provider pass', () => {
  it.each([
    ['no rules', P, {}],
    ['application rule weight 0 for the address', P, { application: app(item('10.0.0.5:20880', 'weight: 0')) }],
    ['the host without port matches', P, { application: app(item('10.0.0.5', 'weight: 0')) }],
    ['another address does not', P, { application: app(item('10.0.0.6:20880', 'weight: 0')) }],
    [
      'service rule beats application rule',
      PG,
      { application: app(item('10.0.0.5:20880', 'weight: 0')), service: svc('online/com.acme.OrderService:1.0.0', item('10.0.0.5:20880', 'weight: 200')) },
    ],
    [
      'a bare interface name does not match a grouped provider',
      PG,
      { application: app(item('10.0.0.5:20880', 'weight: 0', '  services: [com.acme.OrderService]\n')) },
    ],
    ['full service key matches', PG, { application: app(item('10.0.0.5:20880', 'weight: 0', '  services: [online/com.acme.OrderService:1.0.0]\n')) }],
    [
      'method weight left by another item, zeroed by a later one',
      P,
      { application: app(item('10.0.0.5:20880', 'get.weight: 200') + item('10.0.0.5:20880', 'weight: 0, get.weight: 0')) },
    ],
    ['0.0.0.0 items sort before host items', P, { application: app(item('10.0.0.5:20880', 'weight: 0') + item('0.0.0.0', 'weight: 100')) }],
    ['a typed item without its own enabled is off', P, { application: app(item('10.0.0.5:20880', 'weight: 0', '  type: weight\n')) }],
    ['a switched-off rule', P, { application: app(item('10.0.0.5:20880', 'disabled: true'), 'enabled: false\n') }],
    ['disabled', P, { application: app(item('10.0.0.5:20880', 'disabled: true')) }],
    [
      'JSON rule',
      P,
      {
        application: JSON.stringify({
          configVersion: 'v2.7',
          scope: 'application',
          key: 'order',
          enabled: true,
          configs: [{ addresses: ['10.0.0.5:20880'], side: 'provider', parameters: { weight: 0 } }],
        }),
      },
    ],
    ['JSON list of override URLs', P, { application: JSON.stringify(['override://10.0.0.5:20880/*?category=configurators&enabled=true&weight=0']) }],
    [
      '2.6 override with port',
      P,
      { overrides: ['override://10.0.0.5:20880/com.acme.OrderService?category=configurators&dynamic=false&enabled=true&weight=0'] },
    ],
    [
      '2.6 override without port applies only as 0.0.0.0',
      P,
      { overrides: ['override://10.0.0.5/com.acme.OrderService?category=configurators&enabled=true&weight=0'] },
    ],
    ['rule of another application', P, { application: app(item('10.0.0.5:20880', 'weight: 0')).replace('key: order', 'key: billing') }],
  ])('%s', (_name, provider, rules: { overrides?: string[]; application?: string; service?: string }) => {
    const sim = reexported(parseUrl(provider)!, rules);
    const ours = effective(parseDubboUrl(provider)!, {
      overrides: (rules.overrides ?? []).map((u) => ({ url: parseDubboUrl(u)!, source: u })),
      application: rules.application ? parseRuleText(rules.application, 'app').configurators : [],
      service: rules.service ? parseRuleText(rules.service, 'svc').configurators : [],
    });
    expect(stateText(stateOf(parseDubboUrl(formatUrl(sim))!))).toBe(stateText(ours));
  });
});
