/**
 * Entry of the sandbox hub process (registry + router + load generator), started by the supervisor.
 * Configuration comes from the environment so that `ps` stays short and the supervisor stays the only writer of state.
 */
import { startHub } from './hub.js';

const env = process.env;
const hub = await startHub({
  address: env.SANDBOX_HUB_ADDRESS ?? '127.0.1.100',
  registryPort: Number(env.SANDBOX_REGISTRY_PORT ?? 8848),
  routerPort: Number(env.SANDBOX_ROUTER_PORT ?? 8000),
  service: env.SANDBOX_SERVICE ?? 'demo-service',
  rps: Number(env.SANDBOX_RPS ?? 20),
  // The train sandbox (router in front of the BFE tier, with a gray entry).
  train: env.SANDBOX_GRAY_PORT
    ? {
        app: env.SANDBOX_FRONT_APP ?? 'bfe',
        grayPort: Number(env.SANDBOX_GRAY_PORT),
        grayGroup: env.SANDBOX_GRAY_GROUP ?? 'GREEN',
        grayRps: Number(env.SANDBOX_GRAY_RPS ?? 10),
      }
    : undefined,
});
console.log(`hub up: registry ${hub.servers[0]!.url}, router ${hub.servers[1]!.url}`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await hub.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
