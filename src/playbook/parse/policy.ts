import { notifyEntrySchema, toNotifySpec, type NotifySpec } from '../../notify/config.js';
import type { Playbook } from '../types.js';
import type { ParseContext } from './context.js';
import { addZodIssues } from './issues.js';

/** `policy: hotfix` with its `reason:` — a documented faster path that always carries its reason. */
export function parseHotfix(c: ParseContext): Playbook['hotfix'] {
  const { src, top } = c;
  if (!top) return undefined;
  if (top.policy === 'hotfix') {
    if (top.reason) return { reason: top.reason };
    src.add(['policy'], 'policy: hotfix needs a reason: (why this release skips the normal waves); it goes into the journal');
  } else if (top.reason !== undefined) {
    src.add(['reason'], 'reason: is the reason of policy: hotfix; without it, give the reason on the command line (run --reason)', { key: true });
  }
  return undefined;
}

/** `notify:` webhook entries, each checked by src/notify/config.ts; names unique. */
export function parseNotify(c: ParseContext): NotifySpec[] {
  const { src, d } = c;
  const notify: NotifySpec[] = [];
  (Array.isArray(d.notify) ? d.notify : []).forEach((raw, i) => {
    const r = notifyEntrySchema.safeParse(raw);
    if (!r.success) return addZodIssues(src, ['notify', i], r.error);
    const spec = toNotifySpec(r.data, i);
    if (notify.some((n) => n.name === spec.name)) src.add(['notify', i], `duplicate notify name "${spec.name}": give one of them a name:`);
    notify.push(spec);
  });
  return notify;
}
