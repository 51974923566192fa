/**
 * Child process of `inventory: {provider, service}` (src/playbook/inventory.ts): reads {dir, provider, service} as
 * JSON on stdin, asks the provider's listHosts and prints the hosts as JSON. Separate so that loading stays synchronous.
 */
import { listRegistryHosts } from './registry-hosts.js';

async function main(): Promise<void> {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const { dir, provider, service } = JSON.parse(input) as { dir: string; provider: { type: string } & Record<string, unknown>; service: string };
  process.stdout.write(JSON.stringify(await listRegistryHosts(dir, provider, service, AbortSignal.timeout(55_000))));
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  },
);
