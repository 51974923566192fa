/**
 * Entry of one sandbox host process, started by the supervisor (`sandbox up` / `sandbox deploy`).
 * It registers itself in the sandbox registry like an application with a Nacos client would, and on SIGTERM
 * stops accepting, finishes what is in flight, then exits.
 */
import { startHost } from './host.js';
import { request } from './http.js';

const env = process.env;
const name = env.SANDBOX_HOST ?? 'h01';
const address = env.SANDBOX_ADDRESS ?? '127.0.0.1';
const port = Number(env.SANDBOX_PORT ?? 8080);
const version = env.VERSION ?? '1.0.0';
const group = env.GROUP ?? 'BLUE';
const registry = env.SANDBOX_REGISTRY;
const service = env.SANDBOX_SERVICE ?? 'demo-service';

const host = await startHost({
  name,
  address,
  port,
  version,
  group,
  failHealth: env.SANDBOX_FAULT_HEALTH === '1',
  errorRate: Number(env.SANDBOX_FAULT_ERRORS ?? 0) || 0,
  workMs: env.SANDBOX_WORK_MS ? (env.SANDBOX_WORK_MS.split(',').map(Number) as [number, number]) : undefined,
  // A BFE host of the train sandbox calls these services through the registry.
  calls: env.SANDBOX_CALLS && registry ? { registry, services: env.SANDBOX_CALLS.split(',') } : undefined,
});
console.log(`${name} up on ${host.url}: version ${version}, group ${group}`);

if (registry) {
  const params = new URLSearchParams({
    serviceName: service,
    groupName: 'DEFAULT_GROUP',
    namespaceId: 'public',
    ip: address,
    port: String(port),
    clusterName: 'DEFAULT',
    weight: '1',
    enabled: 'true',
    ephemeral: 'true',
    metadata: JSON.stringify({ version, group }),
  });
  // The supervisor starts the hosts while the hub starts: retry until the registry answers (30 s at most).
  const giveUpAt = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await request(`${registry}/nacos/v1/ns/instance`, {
        method: 'POST',
        body: params.toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        timeoutMs: 3000,
      });
      if (res.status >= 200 && res.status < 300) break;
      throw new Error(`HTTP ${res.status}: ${res.text}`);
    } catch (err) {
      if (Date.now() > giveUpAt) {
        console.error(`${name}: cannot register in ${registry}: ${(err as Error).message}`);
        process.exit(1);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  console.log(`${name} registered in ${registry} as ${service} ${address}:${port}`);
}

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log(`${name}: SIGTERM, draining ${host.state.inFlight + host.state.stuck} request(s) in flight`);
  await host.drainAndClose(Number(env.SANDBOX_GRACE_MS ?? 30_000));
  console.log(`${name}: stopped`);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
