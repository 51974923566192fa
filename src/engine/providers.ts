import { findProviderType } from '../providers/index.js';
import type { Monitor, Provider, ProviderEnv } from '../providers/types.js';
import type { Playbook } from '../playbook/types.js';
import { ProviderError } from '../errors.js';

/** Creates each named provider instance on first use and closes them all at the end. */
export class ProviderSet {
  private readonly instances = new Map<string, Provider | Monitor>();

  constructor(
    private readonly playbook: Playbook,
    private readonly env: ProviderEnv,
  ) {}

  private get(name: string, role: 'drain' | 'monitor'): Provider | Monitor {
    const existing = this.instances.get(name);
    if (existing) return existing;
    const spec = this.playbook.providers[name];
    if (!spec) throw new ProviderError(`unknown provider "${name}"`, false);
    const type = findProviderType(spec.type);
    if (!type) throw new ProviderError(`unknown provider type "${spec.type}"`, false);
    if (type.role !== role) throw new ProviderError(`provider "${name}" (${spec.type}) is a ${type.role} provider, not a ${role} provider`, false);
    let instance: Provider | Monitor;
    try {
      instance = type.create(type.options.parse(spec.options), this.env);
    } catch (err) {
      throw new ProviderError(`provider "${name}" (${spec.type}) cannot start: ${(err as Error).message}`, false);
    }
    this.instances.set(name, instance);
    return instance;
  }

  provider(name: string): Provider {
    return this.get(name, 'drain') as Provider;
  }

  monitor(name: string): Monitor {
    return this.get(name, 'monitor') as Monitor;
  }

  async close(): Promise<void> {
    await Promise.all([...this.instances.values()].map((p) => p.close?.().catch(() => undefined)));
    this.instances.clear();
  }
}
