import http from 'node:http';
import type { Registry } from './registry.js';

/**
 * The front router: spreads requests over the registry's instances of one service by weight.
 * Weight 0 or disabled gets nothing. Requests carrying `x-gray-group: G` or cookie `gray=G` (the gray entry)
 * go only to instances whose metadata group is G; all others go to the default group (switched at switchover).
 * It reads the registry in process, on every request, so a drain takes effect for the very next request.
 */
export interface RouterOptions {
  registry: Registry;
  service: string;
  defaultGroup?: string;
}

export class Router {
  defaultGroup: string;
  routed = 0;
  private readonly agent = new http.Agent({ keepAlive: false });

  constructor(private readonly o: RouterOptions) {
    this.defaultGroup = o.defaultGroup ?? 'BLUE';
  }

  groupOf(req: http.IncomingMessage): string {
    const header = req.headers['x-gray-group'];
    if (typeof header === 'string' && header) return header;
    const cookie = /(?:^|;\s*)gray=([^;]+)/.exec(req.headers.cookie ?? '');
    return cookie ? decodeURIComponent(cookie[1]!) : this.defaultGroup;
  }

  pick(group: string): { ip: string; port: number } | undefined {
    const candidates = this.o.registry
      .snapshot(this.o.service)
      .filter((i) => i.effEnabled && i.healthy && i.effWeight > 0 && i.metadata.group === group);
    const total = candidates.reduce((s, i) => s + i.effWeight, 0);
    if (total <= 0) return undefined;
    let r = Math.random() * total;
    for (const c of candidates) {
      r -= c.effWeight;
      if (r < 0) return c;
    }
    return candidates[candidates.length - 1];
  }

  handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const group = this.groupOf(req);
    const target = this.pick(group);
    if (!target) {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `no instance with weight > 0 in group ${group}` }));
      return;
    }
    this.routed++;
    const upstream = http.request(
      { host: target.ip, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: `${target.ip}:${target.port}` }, agent: this.agent },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.setTimeout(30_000, () => upstream.destroy(new Error('upstream timed out')));
    upstream.on('error', (err) => {
      if (res.headersSent) return void res.destroy();
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `upstream ${target.ip}:${target.port}: ${err.message}` }));
    });
    req.pipe(upstream);
  };
}
