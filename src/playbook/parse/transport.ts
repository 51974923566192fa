import { findTransportType } from '../../transport/index.js';
import type { Host, Playbook } from '../types.js';
import type { ParseContext } from './context.js';
import { addZodIssues } from './issues.js';

/**
 * `transport:` (default local): its type's options, checked by the type's schema; files the transport will read
 * (an ssh client config) are checked for these hosts too, so that `validate` finds their errors.
 */
export function parseTransport(c: ParseContext, hosts: Host[]): Playbook['transport'] {
  const { src, top } = c;
  if (!top) return { type: 'local' };
  const { type: name, ...rest } = top.transport as { type: string };
  const type = findTransportType(name);
  if (!type) return (src.add(['transport', 'type'], `unknown transport type "${name}" (use local or ssh)`), { type: 'local' });
  const r = type.options.safeParse(rest);
  if (!r.success) return (addZodIssues(src, ['transport'], r.error), { type: 'local' });
  c.issues.push(...(type.check?.(r.data, c.dir, hosts) ?? []));
  return { type: name, ...(r.data as object) };
}
