import { javaUrlEncode } from '../../../src/providers/registry/dubbo-zookeeper.js';
import type { Zk } from '../../../src/providers/zk.js';

/**
 * A realistic Dubbo registry for the ZooKeeper tests: two applications, several interfaces, a service group/version,
 * and config rules written by other people (which must survive every graywave operation byte for byte).
 */

export const ORDER_HOSTS = Array.from({ length: 8 }, (_, i) => `127.0.0.${11 + i}`);

export function providerUrl(host: string, port: number, iface: string, app: string, extra: Record<string, string> = {}): string {
  const params: Record<string, string> = {
    anyhost: 'true',
    application: app,
    deprecated: 'false',
    dubbo: '2.0.2',
    dynamic: 'true',
    generic: 'false',
    interface: iface,
    methods: 'create,get,cancel',
    pid: '4242',
    release: '2.7.23',
    side: 'provider',
    timestamp: '1700000000000',
    ...extra,
  };
  const q = Object.keys(params)
    .sort()
    .map((k) => `${k}=${params[k]}`)
    .join('&');
  return `dubbo://${host}:${port}/${iface}?${q}`;
}

/** Someone's hand-written rule: flow style, a comment, a balancing item for another address. Not what the yaml lib would print. */
export const FOREIGN_CONFIGURATORS = `# owned by the SRE team, ticket OPS-1234
configVersion: v2.7
scope: application
key: order-service
enabled: true
configs:
- addresses: ["127.0.0.99:20880"]
  side: provider
  type: balancing
  enabled: true
  parameters: {loadbalance: leastactive}
`;

export const FOREIGN_TAG_ROUTER = `force: false
runtime: true
enabled: true
priority: 1
key: order-service
tags:
- name: blue
  addresses: ["127.0.0.99:20880"]
`;

export async function mk(zk: Zk, path: string, data = ''): Promise<void> {
  await zk.createWithParents(path, data, '127.0.0.1');
}

export async function seedDubbo(zk: Zk, opts: { orderHosts?: string[]; foreignRules?: boolean } = {}): Promise<void> {
  const hosts = opts.orderHosts ?? ORDER_HOSTS;
  const reg = async (host: string, port: number, iface: string, app: string, extra?: Record<string, string>) =>
    mk(zk, `/dubbo/${javaUrlEncode(iface)}/providers/${javaUrlEncode(providerUrl(host, port, iface, app, extra))}`);
  for (const h of hosts) {
    await reg(h, 20880, 'com.acme.order.OrderService', 'order-service', { group: 'online', version: '1.0.0', weight: '100' });
    await reg(h, 20880, 'com.acme.order.RefundService', 'order-service');
  }
  // The other application shares two of the hosts (other port): it must never be touched.
  for (const h of hosts.slice(0, 2)) await reg(h, 20881, 'com.acme.pay.PayService', 'payment-service', { methods: 'pay,refund' });
  // Consumers and routers folders exist in a real registry.
  await mk(zk, `/dubbo/${javaUrlEncode('com.acme.order.OrderService')}/consumers/${javaUrlEncode('consumer://127.0.0.50/com.acme.order.OrderService?application=web&category=consumers&side=consumer')}`);
  await mk(zk, `/dubbo/${javaUrlEncode('com.acme.order.OrderService')}/routers`, '127.0.0.1');
  if (opts.foreignRules !== false) {
    await mk(zk, '/dubbo/config/dubbo/order-service.configurators', FOREIGN_CONFIGURATORS);
    await mk(zk, '/dubbo/config/dubbo/order-service.tag-router', FOREIGN_TAG_ROUTER);
    // A 2.6-style override someone set on another host (weight 50).
    await mk(
      zk,
      `/dubbo/${javaUrlEncode('com.acme.order.RefundService')}/configurators/${javaUrlEncode('override://127.0.0.99:20880/com.acme.order.RefundService?category=configurators&dynamic=false&enabled=true&weight=50')}`,
    );
    await mk(zk, '/dubbo/config/dubbo/payment-service.configurators', 'configVersion: v2.7\nscope: application\nkey: payment-service\nenabled: true\nconfigs:\n  - addresses: [0.0.0.0]\n    side: provider\n    parameters: {timeout: 3000}\n');
  }
}
