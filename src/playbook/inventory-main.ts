/**
 * Child process of `inventory: {provider, service}` (src/playbook/inventory.ts): reads {dir, provider, service} as
 * JSON on stdin, asks the provider's listHosts and prints the hosts as JSON. Separate so that loading stays synchronous.
 */
import { findProviderType } from '../providers/index.js';
import type { Provider } from '../providers/types.js';
import { LocalTransport } from '../transport/local.js';
import { Secrets } from '../util/secrets.js';

async function main(): Promise<void> {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const { dir, provider, service } = JSON.parse(input) as { dir: string; provider: { type: string } & Record<string, unknown>; service: string };
  const { type, ...options } = provider;
  const pt = findProviderType(type);
  if (!pt) throw new Error(`unknown provider type ${type}`);
  const secrets = new Secrets(dir);
  const p = pt.create(pt.options.parse(options), { dir, secrets, transport: new LocalTransport(dir) }) as Provider;
  if (typeof p.listHosts !== 'function') throw new Error(`provider type ${type} cannot list hosts (no listHosts)`);
  try {
    const hosts = await p.listHosts(service, AbortSignal.timeout(55_000));
    if (!Array.isArray(hosts) || hosts.length === 0) throw new Error(`provider type ${type} lists no hosts for service ${service}`);
    process.stdout.write(JSON.stringify(hosts));
  } finally {
    await p.close?.();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  },
);
