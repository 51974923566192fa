import { javaUrlDecode, javaUrlEncode } from '../../../src/providers/registry/dubbo-zookeeper.js';
import { formatUrl, parseUrl, reexported, serviceRuleName, type SimUrl } from './dubbo-provider-sim.mjs';
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
  await mk(
    zk,
    `/dubbo/${javaUrlEncode('com.acme.order.OrderService')}/consumers/${javaUrlEncode('consumer://127.0.0.50/com.acme.order.OrderService?application=web&category=consumers&side=consumer')}`,
  );
  await mk(zk, `/dubbo/${javaUrlEncode('com.acme.order.OrderService')}/routers`, '127.0.0.1');
  if (opts.foreignRules !== false) {
    await mk(zk, '/dubbo/config/dubbo/order-service.configurators', FOREIGN_CONFIGURATORS);
    await mk(zk, '/dubbo/config/dubbo/order-service.tag-router', FOREIGN_TAG_ROUTER);
    // A 2.6-style override someone set on another host (weight 50).
    await mk(
      zk,
      `/dubbo/${javaUrlEncode('com.acme.order.RefundService')}/configurators/${javaUrlEncode('override://127.0.0.99:20880/com.acme.order.RefundService?category=configurators&dynamic=false&enabled=true&weight=50')}`,
    );
    await mk(
      zk,
      '/dubbo/config/dubbo/payment-service.configurators',
      'configVersion: v2.7\nscope: application\nkey: payment-service\nenabled: true\nconfigs:\n  - addresses: [0.0.0.0]\n    side: provider\n    parameters: {timeout: 3000}\n',
    );
  }
}

/**
 * Makes the static seeds behave like Dubbo 2.7+/3 providers: each provider URL under <root>/<interface>/providers is
 * re-registered with what its 2.6 overrides, its application rule and its service rule give it, the way
 * RegistryProtocol.reExport does (unregister the old URL, register the configured one; computed by
 * dubbo-provider-sim.mjs, not by graywave's code). A test calls `pass()` where the provider would have applied a rule
 * (deterministic), or `start()` to have it done every `everyMs` like a running fleet (release tests).
 */
export class SeedReexporter {
  /** Registered node -> the provider's origin URL and that URL's own node name (what it registers without rules). */
  private origins = new Map<string, { url: SimUrl; path: string }>();
  private timer?: ReturnType<typeof setInterval>;
  private chain: Promise<void> = Promise.resolve();
  /** Re-registrations done (for tests that want to see one happen). */
  count = 0;

  constructor(
    private readonly zk: Zk,
    /** interfaces: only the providers of these (others, such as a test app's ephemeral nodes, are left alone). */
    private readonly o: { root?: string; configRoot?: string; interfaces?: string[] } = {},
  ) {}

  start(everyMs = 50): void {
    this.timer ??= setInterval(() => void this.pass().catch(() => undefined), everyMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.chain.catch(() => undefined);
  }

  /** One re-export round over every provider (serialised with the timer's rounds). */
  pass(): Promise<void> {
    this.chain = this.chain.catch(() => undefined).then(() => this.once());
    return this.chain;
  }

  private async text(path: string): Promise<string | undefined> {
    return (await this.zk.get(path))?.data.toString('utf8');
  }

  private async once(): Promise<void> {
    const root = this.o.root ?? '/dubbo';
    const configRoot = this.o.configRoot ?? `${root}/config/dubbo`;
    const folders = ((await this.zk.children(root)) ?? []).filter(
      (f) => !['config', 'metadata', 'mapping'].includes(f) && (!this.o.interfaces || this.o.interfaces.includes(javaUrlDecode(f))),
    );
    for (const folder of folders) {
      const dir = `${root}/${folder}/providers`;
      const nodes = (await this.zk.children(dir)) ?? [];
      if (nodes.length === 0) continue;
      // ZookeeperRegistry hands the provider the enabled override URLs of category configurators.
      const overrides = ((await this.zk.children(`${root}/${folder}/configurators`)) ?? [])
        .map((n) => javaUrlDecode(n))
        .filter((u) => /[?&]category=configurators(&|$)/.test(u) || !/[?&]category=/.test(u))
        .filter((u) => !/[?&]enabled=false(&|$)/.test(u));
      const application = new Map<string, string | undefined>();
      for (const node of nodes) {
        const path = `${dir}/${node}`;
        const origin = this.origins.get(path) ?? { url: parseUrl(javaUrlDecode(node))!, path };
        if (!origin.url) continue;
        this.origins.set(path, origin);
        const app = origin.url.params.application ?? '';
        if (!application.has(app)) application.set(app, await this.text(`${configRoot}/${app}.configurators`));
        const next = reexported(origin.url, {
          overrides,
          application: application.get(app),
          service: await this.text(`${configRoot}/${serviceRuleName(origin.url)}`),
        });
        const same = JSON.stringify(next.params) === JSON.stringify(origin.url.params);
        const target = same ? origin.path : `${dir}/${javaUrlEncode(formatUrl(next))}`;
        if (target === path) continue;
        const data = (await this.zk.get(path))?.data ?? Buffer.alloc(0);
        try {
          await this.zk.multi([
            { op: 'create', path: target, data },
            { op: 'remove', path, version: -1 },
          ]);
        } catch {
          continue; // gone meanwhile, or the target exists: the next round sees the new state
        }
        this.origins.delete(path);
        this.origins.set(target, origin);
        this.count++;
      }
    }
  }
}
