import { findStateBackendType, stateBackendTypes } from '../../journal/backends.js';
import type { Playbook } from '../types.js';
import type { ParseContext } from './context.js';
import { addZodIssues } from './issues.js';

/** `state:` (default files): the backend's options, each problem at its position (the backend parses them when opened). */
export function parseState(c: ParseContext): Playbook['state'] {
  const { src, top } = c;
  if (!top?.state) return undefined;
  const { type, ...rest } = top.state;
  const kind = findStateBackendType(type);
  if (!kind) {
    src.add(['state', 'type'], `unknown state type "${type}" (use ${stateBackendTypes.map((b) => b.type).join(', ')})`);
    return undefined;
  }
  if (type === 'file') {
    for (const key of Object.keys(rest)) src.add(['state', key], `unknown key "${key}" in state (type: file takes no options)`, { key: true });
  } else {
    const r = kind.options.safeParse(rest);
    if (!r.success) addZodIssues(src, ['state'], r.error);
  }
  return top.state as Playbook['state'];
}
