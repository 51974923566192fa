import { findTransportType } from '../../transport/index.js';
import type { Playbook } from '../types.js';
import type { ParseContext } from './context.js';
import { addZodIssues } from './issues.js';

/** `transport:` (default local): its type's options, checked by the type's schema. */
export function parseTransport(c: ParseContext): Playbook['transport'] {
  const { src, top } = c;
  if (!top) return { type: 'local' };
  const { type: name, ...rest } = top.transport as { type: string };
  const type = findTransportType(name);
  if (!type) return (src.add(['transport', 'type'], `unknown transport type "${name}" (use local or ssh)`), { type: 'local' });
  const r = type.options.safeParse(rest);
  if (!r.success) return (addZodIssues(src, ['transport'], r.error), { type: 'local' });
  return { type: name, ...(r.data as object) };
}
