import { findProviderType } from '../providers/index.js';
import type { Provider } from '../providers/types.js';
import { LocalTransport } from '../transport/local.js';
import { Secrets } from '../util/secrets.js';

/** One host as a registry lists it (the same shape as an inventory entry). */
export interface ListedHost {
  name: string;
  address: string;
  labels?: Record<string, string>;
  vars?: Record<string, unknown>;
}

/**
 * The hosts a registry provider lists for `service` (its `listHosts`): for `inventory: {provider, service}` (in a
 * child process, src/playbook/inventory-main.ts) and `graywave init --from-registry`. An empty list is an error: an
 * inventory is never silently empty.
 */
export async function listRegistryHosts(
  dir: string,
  provider: { type: string } & Record<string, unknown>,
  service: string,
  signal: AbortSignal,
): Promise<ListedHost[]> {
  const { type, ...options } = provider;
  const pt = findProviderType(type);
  if (!pt) throw new Error(`unknown provider type ${type}`);
  const p = pt.create(pt.options.parse(options), { dir, secrets: new Secrets(dir), transport: new LocalTransport(dir) }) as Provider;
  try {
    if (typeof p.listHosts !== 'function') throw new Error(`provider type ${type} cannot list hosts (no listHosts)`);
    const hosts = await p.listHosts(service, signal);
    if (!Array.isArray(hosts) || hosts.length === 0) throw new Error(`provider type ${type} lists no hosts for service ${service}`);
    return hosts;
  } finally {
    await p.close?.();
  }
}
