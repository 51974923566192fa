import http from 'node:http';
import { SERVED_BY_HEADER } from '../gates/served-by.js';
import type { Registry } from './registry.js';

/**
 * The front router: spreads requests over the registry's instances of one service by weight.
 * Weight 0 or disabled gets nothing. Requests carrying `x-gray-group: G` or cookie `gray=G` (the gray entry)
 * go only to instances whose metadata group is G; all others go to the default group (switched at switchover).
 * It reads the registry in process, on every request, so a drain takes effect for the very next request.
 *
 * The train sandbox's router (an nginx in front of the BFE tier) also has a gray entry of its own (`handle(req, res,
 * group)`: every request through it is gray, and the BFE gets `x-gray-group` so it passes the mark on), falls back
 * to the other group when the request's group has no instance (`fallback`: gray traffic then reaches BLUE, which is
 * what the green-only check catches), and writes which instance served it into the served-by header (`app`).
 */
export interface RouterOptions {
  registry: Registry;
  service: string;
  defaultGroup?: string;
  /** With no instance of the request's group: use the others (tag routing that is not forced). Default: 503. */
  fallback?: boolean;
  /** The app name of the service, for the served-by header (`app=GROUP@address` in front of the upstream's). */
  app?: string;
}

/** The header a request's group travels in, from the gray entry through every hop of the call chain. */
export const GRAY_HEADER = 'x-gray-group';
/**
 * The picked instance's label in the registry, told to it with each request (as an nginx passes its upstream's
 * group on): a web instance relabelled without a restart (`deploy: false`) then serves in its new group at once.
 */
export const INSTANCE_GROUP_HEADER = 'x-graywave-instance-group';

export interface Candidate {
  ip: string;
  port: number;
  weight: number;
  group: string | undefined;
}

/**
 * A weighted pick among the routable instances of `group` (weight > 0); with `fallback`, among the other
 * groups' when the group has none. One function for the router and for the BFE's registry client.
 */
export function pickWeighted<T extends Candidate>(all: T[], group: string, fallback = false, exclude?: (c: T) => boolean): T | undefined {
  const usable = all.filter((c) => c.weight > 0 && !exclude?.(c));
  let candidates = usable.filter((c) => c.group === group);
  if (candidates.length === 0 && fallback) candidates = usable;
  const total = candidates.reduce((s, c) => s + c.weight, 0);
  if (total <= 0) return undefined;
  let r = Math.random() * total;
  for (const c of candidates) {
    r -= c.weight;
    if (r < 0) return c;
  }
  return candidates[candidates.length - 1];
}

export class Router {
  defaultGroup: string;
  routed = 0;
  /** When the default group was switched, for the train demo's summary. */
  readonly switches: { at: number; group: string }[] = [];
  private readonly agent = new http.Agent({ keepAlive: false });

  constructor(private readonly o: RouterOptions) {
    this.defaultGroup = o.defaultGroup ?? 'BLUE';
  }

  switchTo(group: string): void {
    this.defaultGroup = group;
    this.switches.push({ at: Date.now(), group });
  }

  groupOf(req: http.IncomingMessage): string {
    const header = req.headers[GRAY_HEADER];
    if (typeof header === 'string' && header) return header;
    const cookie = /(?:^|;\s*)gray=([^;]+)/.exec(req.headers.cookie ?? '');
    return cookie ? decodeURIComponent(cookie[1]!) : this.defaultGroup;
  }

  pick(group: string): (Candidate & { group: string | undefined }) | undefined {
    const all = this.o.registry
      .snapshot(this.o.service)
      .filter((i) => i.effEnabled && i.healthy)
      .map((i) => ({ ip: i.ip, port: i.port, weight: i.effWeight, group: i.metadata.group }));
    return pickWeighted(all, group, this.o.fallback);
  }

  /** `grayGroup`: the request came through the gray entry of that group. */
  handle = (req: http.IncomingMessage, res: http.ServerResponse, grayGroup?: string): void => {
    const group = grayGroup ?? this.groupOf(req);
    const target = this.pick(group);
    if (!target) {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `no instance with weight > 0 in group ${group}` }));
      return;
    }
    this.routed++;
    const headers = {
      ...req.headers,
      host: `${target.ip}:${target.port}`,
      ...(grayGroup ? { [GRAY_HEADER]: grayGroup } : {}),
      ...(this.o.app && target.group ? { [INSTANCE_GROUP_HEADER]: target.group } : {}),
    };
    const upstream = http.request({ host: target.ip, port: target.port, method: req.method, path: req.url, headers, agent: this.agent }, (up) => {
      const out = { ...up.headers };
      if (this.o.app) {
        const own = `${this.o.app}=${target.group ?? '?'}@${target.ip}`;
        const rest = up.headers[SERVED_BY_HEADER];
        out[SERVED_BY_HEADER] = rest ? `${own},${String(rest)}` : own;
      }
      res.writeHead(up.statusCode ?? 502, out);
      up.pipe(res);
    });
    upstream.setTimeout(30_000, () => upstream.destroy(new Error('upstream timed out')));
    upstream.on('error', (err) => {
      if (res.headersSent) return void res.destroy();
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `upstream ${target.ip}:${target.port}: ${err.message}` }));
    });
    req.pipe(upstream);
  };
}
