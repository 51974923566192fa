import { unknownProviderMessage, unknownProviderTypeMessage } from '../messages.js';
import { findProviderType } from '../../providers/index.js';
import type { Playbook } from '../types.js';
import type { ParseContext, Uses } from './context.js';
import { addTlsFileIssues, addZodIssues } from './issues.js';

/** `providers:` each named instance's type and options; returns them with a checker of what steps and gates use. */
export function parseProviders(c: ParseContext): { providers: Playbook['providers']; uses: Uses } {
  const { src, d, dir } = c;
  const providers: Playbook['providers'] = {};
  const roles = new Map<string, string>();
  for (const [name, raw] of Object.entries((d.providers as Record<string, unknown> | undefined) ?? {})) {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || typeof (raw as { type?: unknown }).type !== 'string') {
      src.add(['providers', name], `provider ${name} needs a type (e.g. type: dubbo-zookeeper)`);
      continue;
    }
    const { type, ...options } = raw as { type: string } & Record<string, unknown>;
    const pt = findProviderType(type);
    if (!pt) {
      src.add(['providers', name, 'type'], unknownProviderTypeMessage(type));
      providers[name] = { type, options }; // declared, so that its uses are not reported a second time
      continue;
    }
    const r = pt.options.safeParse(options);
    if (!r.success) addZodIssues(src, ['providers', name], r.error);
    else addTlsFileIssues(src, ['providers', name], r.data, dir);
    providers[name] = { type, options };
    roles.set(name, pt.role);
  }
  const uses: Uses = {
    check(path, key, list) {
      for (const u of list) {
        const role = roles.get(u.provider);
        if (role === undefined && !(u.provider in providers)) src.add([...path, key], unknownProviderMessage(u.provider, providers));
        else if (role !== undefined && role !== u.role)
          src.add([...path, key], `provider "${u.provider}" is a ${role} provider; this needs a ${u.role} provider`);
      }
    },
  };
  return { providers, uses };
}
