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
}

export interface Hub {
  registry: Registry;
  router: Router;
  loadgen: LoadGenerator;
  servers: RunningServer[];
  close(): Promise<void>;
}

export async function startHub(o: HubOptions): Promise<Hub> {
  const registry = new Registry();
  const router = new Router({ registry, service: o.service });
  const loadgen = new LoadGenerator({ host: o.address, port: o.routerPort }, o.rps);

  const admin = (req: http.IncomingMessage, res: http.ServerResponse, path: string) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    if (path === 'status') {
      return sendJson(res, 200, {
        defaultGroup: router.defaultGroup,
        service: o.service,
        instances: registry.snapshot(o.service).map((i) => ({
          ip: i.ip,
          port: i.port,
          weight: i.effWeight,
          enabled: i.effEnabled,
          metadata: i.metadata,
        })),
        load: loadgen.snapshot(),
      });
    }
    if (path === 'loadgen') return sendJson(res, 200, loadgen.snapshot());
    if (req.method !== 'POST') return sendJson(res, 405, { error: 'use POST' });
    switch (path) {
      case 'switch': {
        const group = url.searchParams.get('group');
        if (!group) return sendJson(res, 400, { error: 'group is required' });
        router.defaultGroup = group;
        return sendJson(res, 200, { defaultGroup: group });
      }
      case 'loadgen/start':
        loadgen.start(Number(url.searchParams.get('rps')) || undefined);
        return sendJson(res, 200, loadgen.snapshot());
      case 'loadgen/stop':
        loadgen.stop();
        return sendJson(res, 200, loadgen.snapshot());
      case 'loadgen/reset':
        loadgen.reset();
        return sendJson(res, 200, loadgen.snapshot());
      case 'loadgen/settle':
        // Wait for requests already sent, so the counts read next are final.
        return void loadgen.settle().then(() => sendJson(res, 200, loadgen.snapshot()));
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
  ];
  if (o.rps > 0) loadgen.start(o.rps);
  return {
    registry,
    router,
    loadgen,
    servers,
    async close() {
      loadgen.stop();
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}
