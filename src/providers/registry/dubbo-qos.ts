import { quote } from 'shell-quote';
import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import { http } from '../../transport/http.js';
import { duration } from '../../util/duration.js';
import type { Check, Provider, ProviderContext, ProviderType } from '../types.js';
import { ZkProviderBase, zkOptionsOf } from '../zk.js';
import { addressOf, hostMatches, serviceKey } from './dubbo-rules.js';
import { dubboRegistryOptions, hostNames, readRegistrations, registeredCheck, type Found } from './dubbo-zookeeper.js';

/*
 * Dubbo's own lossless offline through the application's QoS port (apache/dubbo dubbo-plugin/dubbo-qos, 3.x):
 *
 *   drain      GET http://<qos>/<command>[?service=<pattern>]      command: offline | offlineApp | offlineInterface
 *   restore    GET http://<qos>/online… with the same pattern      (BaseOffline / BaseOnline, HttpCommandDecoder)
 *              the answer is "OK", or "service not found" when the pattern (Java String.matches on the service key
 *              `group/interface:version` or `interface:version`) matches nothing.
 *   isDrained  read from ZooKeeper, never from the QoS answer: no interface-level URL of the host's matching services
 *              under <root>/<interface>/providers and no application-level instance <servicesRoot>/<app>/<ip:port>
 *              left that consumers could route on.
 *   isRestored every registration the host had before the drain is back (interface- and application-level).
 *
 * `qos-accept-foreign-ip` defaults to false: the QoS port answers only loopback clients. `via: host` (default) runs
 * curl on the host through the transport against 127.0.0.1; `via: direct` calls <host address>:<qosPort> from here.
 * offline takes both levels down; offlineApp only the application-level instance (interface-level consumers keep
 * routing: isDrained says so); offlineInterface only the interface-level URLs.
 */

const options = z
  .object({
    ...dubboRegistryOptions,
    qosPort: z.number().int().min(1).max(65535).default(22222),
    /** host: curl on the host against 127.0.0.1 (qos-accept-foreign-ip=false); direct: HTTP from here to the host. */
    via: z.enum(['host', 'direct']).default('host'),
    command: z.enum(['offline', 'offlineApp', 'offlineInterface']).default('offline'),
    /** Service pattern (Java regex, whole key) for offline/online; default every service of the application. */
    services: z.string().min(1).optional(),
    /** Only the registrations on this Dubbo port. */
    port: z.number().int().min(1).max(65535).optional(),
    /** Timeout of one QoS call. */
    timeout: duration.default('15s'),
  })
  .strict();
type Options = z.infer<typeof options>;

interface Saved {
  command: Options['command'];
  services?: string;
  /** What the host had registered before the drain: `iface <serviceKey>@<addr>` and `app <addr>`. */
  before: string[];
}

const ONLINE: Record<Options['command'], string> = { offline: 'online', offlineApp: 'onlineApp', offlineInterface: 'onlineInterface' };

class DubboQos extends ZkProviderBase implements Provider {
  private readonly label: string;
  private readonly pattern?: RegExp;

  constructor(private readonly o: Options) {
    const label = `dubbo-qos (${o.application})`;
    super(zkOptionsOf(o, label));
    this.label = label;
    if (o.services) {
      try {
        this.pattern = new RegExp(`^(?:${o.services})$`);
      } catch (e) {
        throw new ProviderError(`${this.label}: services is not a regular expression: ${(e as Error).message}`, false);
      }
    }
  }

  /** BaseOffline: the pattern matches the service key or the display key (`interface:version`). */
  private matches(f: Found): boolean {
    if (!this.pattern || f.level === 'application') return true;
    return this.pattern.test(serviceKey(f.url)) || this.pattern.test(`${f.iface}:${f.url.params.version ?? null}`);
  }

  private async mine(ctx: ProviderContext): Promise<Found[]> {
    const all = await readRegistrations(this.zk, { root: this.o.root, servicesRoot: this.o.servicesRoot, applications: [this.o.application] });
    return all.filter(
      (f) =>
        f.url.params.application === this.o.application &&
        hostMatches(f.url.host, hostNames(ctx.host)) &&
        (this.o.port === undefined || f.url.port === this.o.port),
    );
  }

  private keyOf(f: Found): string {
    return f.level === 'interface' ? `iface ${serviceKey(f.url)}@${addressOf(f.url)}` : `app ${addressOf(f.url)}`;
  }

  /** One QoS command; returns the answer text. Throws on anything but HTTP 200 "OK". */
  private async qos(ctx: ProviderContext, command: string): Promise<string> {
    const path = `/${command}${this.o.services ? `?service=${encodeURIComponent(this.o.services)}` : ''}`;
    let status: number;
    let body: string;
    if (this.o.via === 'host') {
      const url = `http://127.0.0.1:${this.o.qosPort}${path}`;
      // -w puts the status on its own last line; -sS: quiet but errors shown.
      const res = await ctx.transport.exec(
        ctx.host,
        quote(['curl', '-sS', '--max-time', String(Math.ceil(this.o.timeout / 1000)), '-w', '\n%{http_code}', url]),
        { timeoutMs: this.o.timeout + 5000, signal: ctx.signal },
      );
      if (res.code !== 0) {
        throw new ProviderError(
          `${this.label}: QoS ${command} on ${ctx.host.name} (curl ${url}): ${res.timedOut ? 'timed out' : `exit ${res.code ?? res.signal}`}: ${(res.stderr || res.stdout).trim().slice(0, 200)}`,
        );
      }
      const cut = res.stdout.lastIndexOf('\n');
      status = Number(res.stdout.slice(cut + 1).trim());
      body = res.stdout.slice(0, Math.max(cut, 0));
    } else {
      const host = ctx.host.address.includes(':') && !ctx.host.address.startsWith('[') ? `[${ctx.host.address}]` : ctx.host.address;
      const res = await http(`http://${host}:${this.o.qosPort}${path}`, { timeoutMs: this.o.timeout, signal: ctx.signal });
      status = res.status;
      body = res.text;
    }
    const text = body.trim();
    if (/Foreign Ip Not Permitted/i.test(text) || status === 0) {
      throw new ProviderError(`${this.label}: the QoS port of ${ctx.host.name} refuses this client (qos-accept-foreign-ip is false): use via: host`, false);
    }
    if (status !== 200)
      throw new ProviderError(
        `${this.label}: QoS ${command} on ${ctx.host.name} answered HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`,
        status >= 500,
      );
    if (text === 'service not found')
      throw new ProviderError(
        `${this.label}: QoS ${command} on ${ctx.host.name}: service not found${this.o.services ? ` for pattern ${this.o.services}` : ''}`,
        false,
      );
    if (text !== 'OK') throw new ProviderError(`${this.label}: QoS ${command} on ${ctx.host.name} answered ${JSON.stringify(text.slice(0, 200))}, not OK`);
    return text;
  }

  async drain(ctx: ProviderContext): Promise<Saved> {
    const previous = ctx.previous as Saved | undefined;
    const mine = await this.mine(ctx);
    // A repeated drain (resume) keeps the registrations seen before the first one.
    const before = previous?.before?.length ? previous.before : [...new Set(mine.filter((f) => this.matches(f)).map((f) => this.keyOf(f)))].sort();
    if (before.length === 0) {
      throw new ProviderError(
        `${this.label}: cannot drain ${ctx.host.name}: nothing of ${this.o.application} registered from ${hostNames(ctx.host).join(' / ')} under ${this.o.root} or ${this.o.servicesRoot}/${this.o.application}`,
        true,
      );
    }
    await this.qos(ctx, this.o.command);
    ctx.log(`dubbo-qos: ${this.o.command}${this.o.services ? ` ${this.o.services}` : ''} answered OK`);
    return { command: this.o.command, services: this.o.services, before };
  }

  async isDrained(ctx: ProviderContext): Promise<Check> {
    try {
      const left = (await this.mine(ctx)).filter((f) => this.matches(f));
      if (left.length === 0) return { done: true, observed: `no registration of ${this.o.application} from ${ctx.host.address} left` };
      const iface = left.filter((f) => f.level === 'interface');
      const app = left.filter((f) => f.level === 'application');
      const parts: string[] = [];
      if (iface.length) parts.push(`interface-level ${[...new Set(iface.map((f) => `${serviceKey(f.url)}@${addressOf(f.url)}`))].slice(0, 5).join(', ')}`);
      if (app.length) parts.push(`application-level ${app.map((f) => f.path).join(', ')}`);
      let hint = '';
      if (this.o.command === 'offlineApp' && iface.length)
        hint = ' (offlineApp takes only the application-level instance down; interface-level consumers still route: use command: offline)';
      else if (this.o.command === 'offlineInterface' && app.length) hint = ' (offlineInterface leaves the application-level instance: use command: offline)';
      else if (this.o.services && app.length)
        hint = ' (with a service pattern the instance stays for the other services; the registry does not show which services it still serves)';
      return { done: false, observed: `still registered: ${parts.join('; ')}${hint}` };
    } catch (err) {
      return { done: false, observed: `cannot read ZooKeeper: ${(err as Error).message}` };
    }
  }

  async restore(ctx: ProviderContext, saved: unknown): Promise<void> {
    const s = saved as Saved | undefined;
    if (!s || !ONLINE[s.command]) throw new ProviderError(`${this.label}: restore of ${ctx.host.name} got no drain record it understands`, false);
    await this.qos(ctx, ONLINE[s.command]);
    ctx.log(`dubbo-qos: ${ONLINE[s.command]}${this.o.services ? ` ${this.o.services}` : ''} answered OK`);
  }

  async isRestored(ctx: ProviderContext, saved: unknown): Promise<Check> {
    const s = saved as Saved | undefined;
    try {
      const now = new Set((await this.mine(ctx)).map((f) => this.keyOf(f)));
      const missing = (s?.before ?? []).filter((k) => !now.has(k));
      if (missing.length > 0)
        return { done: false, observed: `not registered again: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` (+${missing.length - 5})` : ''}` };
      return { done: true, observed: `registered again: ${(s?.before ?? []).length} registrations` };
    } catch (err) {
      return { done: false, observed: `cannot read ZooKeeper: ${(err as Error).message}` };
    }
  }

  /** Preflight (read-only): the host's registrations the drain would take offline (the `services` pattern applied). */
  async isRegistered(ctx: ProviderContext): Promise<Check> {
    try {
      const found = (await this.mine(ctx)).filter((f) => this.matches(f));
      const pattern = this.o.services ? ` matching ${this.o.services}` : '';
      return registeredCheck(
        found,
        `nothing of ${this.o.application}${pattern} registered from ${hostNames(ctx.host).join(' / ')}${this.o.port ? ` port ${this.o.port}` : ''} under ${this.o.root}/<interface>/providers or ${this.o.servicesRoot}/${this.o.application}`,
      );
    } catch (err) {
      return { done: false, observed: `cannot read ZooKeeper: ${(err as Error).message}` };
    }
  }
}

export const dubboQos: ProviderType<Options> = {
  type: 'dubbo-qos',
  role: 'drain',
  options,
  doc: {
    summary:
      'Dubbo providers taken offline through their own QoS port (`offline`, `offlineApp`, `offlineInterface`; `online` on restore): the provider unregisters itself; drained = its registrations are gone from ZooKeeper.',
    checkedAgainst: 'a Dubbo-shaped test application (QoS HTTP offline/online/ls) registering in a real ZooKeeper 3.8',
    example:
      'type: dubbo-qos\nconnect: zk1:2181\napplication: order-service\n# via: host              # curl on the host against 127.0.0.1:<qosPort>; or direct',
    options: {
      root: 'Dubbo registry root in ZooKeeper (read back to confirm the offline).',
      servicesRoot: 'Where Dubbo 3 application-level instances live.',
      port: 'Only the registrations on this Dubbo port (several providers on one host).',
      timeout: 'Timeout of one QoS call.',
      application: 'Provider application name.',
      qosPort: 'Dubbo QoS port on the host.',
      via: '`host`: curl on the host against 127.0.0.1 (qos-accept-foreign-ip=false); `direct`: HTTP from here.',
      command: 'The QoS command that takes the provider offline.',
      services: 'Service pattern (Java regex) for offline/online; default every service.',
    },
  },
  describe: (o, c) => ({
    drain: `${o.via === 'host' ? `on ${c.host.address}: curl http://127.0.0.1:${o.qosPort}` : `GET http://${c.host.address}:${o.qosPort}`}/${o.command}${o.services ? `?service=${o.services}` : ''}`,
    check: `ZooKeeper ${o.connect}: no registration of ${o.application} from ${c.host.address} under ${o.root} or ${o.servicesRoot}/${o.application}`,
    restore: `QoS online for what drain took offline`,
  }),
  create: (o) => new DubboQos(o),
};
