import http from 'node:http';
import { LoadGenerator } from './loadgen.js';
import { listen, Registry, sendJson, type RunningServer } from './registry.js';
import { Router } from './router.js';

/**
 * The sandbox's shared services in one process: the registry (Nacos subset) on its own port, and the router with
 * the load generator behind it on another. Sandbox admin calls live under /_sandbox/ on the router port.
 */
export interface HubOptions {
  address: string;
  registryPort: number;
  routerPort: number;
  service: string;
  rps: number;
  /**
   * The train sandbox: the router is an nginx in front of the BFE tier (`service` is the BFE's), with a gray entry
   * on its own port (every request through it is gray: group `grayGroup`), fallback to the other group, the
   * served-by header, and a second load generator for the gray entry. Every request of both is recorded.
   */
  train?: { app: string; grayPort: number; grayGroup: string; grayRps: number };
}

export interface Hub {
  registry: Registry;
  router: Router;
  loadgen: LoadGenerator;
  /** The train sandbox's gray-entry load. */
  grayLoadgen?: LoadGenerator;
  servers: RunningServer[];
  close(): Promise<void>;
}

export async function startHub(o: HubOptions): Promise<Hub> {
  const registry = new Registry();
  const t = o.train;
  const router = new Router({ registry, service: o.service, ...(t ? { app: t.app, fallback: true } : {}) });
  const loadgen = new LoadGenerator({ host: o.address, port: o.routerPort }, o.rps, undefined, { record: !!t });
  const grayLoadgen = t ? new LoadGenerator({ host: o.address, port: t.grayPort }, t.grayRps, undefined, { record: true }) : undefined;
  const loads = [loadgen, ...(grayLoadgen ? [grayLoadgen] : [])];

  const admin = (req: http.IncomingMessage, res: http.ServerResponse, path: string) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    if (path === 'status') {
      return sendJson(res, 200, {
        defaultGroup: router.defaultGroup,
        service: o.service,
        instances: registry.snapshot(t ? undefined : o.service).map((i) => ({
          service: i.service.split('@@').pop(),
          ip: i.ip,
          port: i.port,
          weight: i.effWeight,
          enabled: i.effEnabled,
          metadata: i.metadata,
        })),
        load: loadgen.snapshot(),
        ...(grayLoadgen ? { grayLoad: grayLoadgen.snapshot() } : {}),
      });
    }
    if (path === 'loadgen') return sendJson(res, 200, loadgen.snapshot());
    if (path === 'traffic') {
      // Every request of the run with its served-by header, and when public traffic was switched (train demo summary).
      return sendJson(res, 200, {
        public: loadgen.records(),
        gray: grayLoadgen?.records() ?? [],
        switches: router.switches,
        load: loadgen.snapshot(),
        grayLoad: grayLoadgen?.snapshot(),
      });
    }
    if (req.method !== 'POST') return sendJson(res, 405, { error: 'use POST' });
    switch (path) {
      case 'switch': {
        const group = url.searchParams.get('group');
        if (!group) return sendJson(res, 400, { error: 'group is required' });
        router.switchTo(group);
        return sendJson(res, 200, { defaultGroup: group });
      }
      case 'loadgen/start':
        loadgen.start(Number(url.searchParams.get('rps')) || undefined);
        grayLoadgen?.start(Number(url.searchParams.get('grayRps')) || undefined);
        return sendJson(res, 200, loadgen.snapshot());
      case 'loadgen/stop':
        loads.forEach((l) => l.stop());
        return sendJson(res, 200, loadgen.snapshot());
      case 'loadgen/reset':
        loads.forEach((l) => l.reset());
        return sendJson(res, 200, loadgen.snapshot());
      case 'loadgen/settle':
        // Wait for requests already sent, so the counts read next are final.
        return void Promise.all(loads.map((l) => l.settle())).then(() => sendJson(res, 200, loadgen.snapshot()));
      default:
        return sendJson(res, 404, { error: `unknown sandbox action ${path}` });
    }
  };

  const routerServer = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path.startsWith('/_sandbox/')) return admin(req, res, path.slice('/_sandbox/'.length));
    router.handle(req, res);
  });
  const servers = [
    await listen(http.createServer(registry.handle), o.address, o.registryPort),
    await listen(routerServer, o.address, o.routerPort),
    // The gray entry: a separate server block, as an nginx gray entry would be (its own port or host name).
    ...(t
      ? [
          await listen(
            http.createServer((req, res) => router.handle(req, res, t.grayGroup)),
            o.address,
            t.grayPort,
          ),
        ]
      : []),
  ];
  if (o.rps > 0) loadgen.start(o.rps);
  if (t && t.grayRps > 0 && o.rps > 0) grayLoadgen!.start(t.grayRps);
  return {
    registry,
    router,
    loadgen,
    grayLoadgen,
    servers,
    async close() {
      loads.forEach((l) => l.stop());
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}
