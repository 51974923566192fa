import { findProviderType } from '../providers/index.js';
import type { Host, Playbook, StepSpec } from '../playbook/types.js';
import { render } from '../util/template.js';
import { templateValues } from './build.js';

/**
 * What a provider step will read and write for one host, resolved for the dry run (ZooKeeper paths, URLs, queue
 * names): from the provider type's read-only `describe` (src/providers/<kind>/<type>.ts). Contacts nothing.
 */
export function resolveEffects(pb: Playbook, step: StepSpec, host: Host, wave: number): string[] {
  const values = templateValues(pb, host, wave);
  const ctx = { host, render: (t: string) => render(t, values) };
  const effects = (name: string) => {
    const spec = pb.providers[name];
    const type = spec && findProviderType(spec.type);
    if (!spec || !type?.describe) return undefined;
    const parsed = type.options.safeParse(spec.options);
    if (!parsed.success) return undefined;
    try {
      return type.describe(parsed.data, ctx);
    } catch (err) {
      return { drain: `(cannot resolve: ${(err as Error).message})` };
    }
  };
  const p = step.params as Record<string, unknown> | string;
  switch (step.action) {
    case 'drain': {
      const e = effects(p as string);
      return e ? ([e.drain && `writes: ${e.drain}`, e.check && `drained when: ${e.check}`, e.restore && `undo: ${e.restore}`].filter(Boolean) as string[]) : [];
    }
    case 'restore': {
      const e = effects(p as string);
      return e?.restore ? [`writes: ${e.restore}`] : [];
    }
    case 'relabel': {
      const e = effects((p as { provider: string }).provider);
      const group = (p as { group?: string }).group ?? pb.group;
      return e?.relabel ? [`writes: ${e.relabel.replace('<group>', group)}`] : [];
    }
    case 'waitDrained': {
      const e = effects((p as { monitor: string }).monitor);
      return e?.reads ? [`reads: ${e.reads}`] : [];
    }
    default:
      return [];
  }
}
