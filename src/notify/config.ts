import { z } from 'zod';
import { tlsOptions, type TlsOptions } from '../transport/tls.js';
import { duration } from '../util/duration.js';
import { secretRef, type SecretRef } from '../util/secrets.js';

/**
 * What a notification is about. Each maps from one engine event:
 * run.start → started, wave.done → wave-done, run.paused → approval-needed, run.halted → halted,
 * rollback.done → rolled-back, run.done → done, run.limited → limited (a `--limit` run finished its hosts; the rest
 * of the fleet is pending: not a halt).
 */
export const NOTIFY_KINDS = ['started', 'wave-done', 'approval-needed', 'halted', 'rolled-back', 'done', 'limited'] as const;
export type NotifyKind = (typeof NOTIFY_KINDS)[number];

export const SEVERITIES = ['info', 'warning', 'error'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** How serious each kind is (`severity:` keeps the kinds at or above it). */
export const KIND_SEVERITY: Record<NotifyKind, Severity> = {
  started: 'info',
  'wave-done': 'info',
  done: 'info',
  limited: 'info',
  'approval-needed': 'warning',
  halted: 'error',
  'rolled-back': 'error',
};

export const NOTIFY_FORMATS = ['json', 'slack', 'feishu', 'dingtalk'] as const;
export type NotifyFormat = (typeof NOTIFY_FORMATS)[number];

const url = z.string().regex(/^https?:\/\/[^\s]+$/, 'a webhook URL starts with http:// or https://');
const urlOrSecret = z.union([url, secretRef], {
  errorMap: () => ({ message: 'a webhook URL (http:// or https://), or { env: NAME } / { file: PATH } when the URL carries a token' }),
});

/**
 * One entry of `notify:`:
 *
 *     notify:
 *       - name: chat
 *         webhook: { url: { env: SLACK_HOOK } }      # or webhook: "https://…", or { url: "https://…", headers: {…} }
 *         format: slack                              # json (default) | slack | feishu | dingtalk
 *         on: [halted, rolled-back, done, limited, approval-needed]   # default; also: started, wave-done
 *         severity: info                             # optional: only kinds at or above (info < warning < error)
 *         timeout: 5s                                # per delivery (default 5s)
 */
export const notifyEntrySchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(60)
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'notify names may only use letters, digits, ".", "_" and "-"')
      .optional(),
    webhook: z.union([
      urlOrSecret,
      z
        .object({
          url: urlOrSecret,
          /** Extra request headers (e.g. Authorization); a value may be a secret reference. */
          headers: z.record(z.union([z.string(), secretRef])).default({}),
          /** An endpoint behind a private CA, or one that wants a client certificate (src/transport/tls.ts). */
          tls: tlsOptions.optional(),
        })
        .strict(),
    ]),
    format: z.enum(NOTIFY_FORMATS).default('json'),
    on: z.array(z.enum(NOTIFY_KINDS)).min(1).default(['halted', 'rolled-back', 'done', 'limited', 'approval-needed']),
    severity: z.enum(SEVERITIES).optional(),
    timeout: duration.default('5s'),
  })
  .strict();

/** One validated `notify:` entry. */
export interface NotifySpec {
  name: string;
  url: string | SecretRef;
  headers: Record<string, string | SecretRef>;
  tls?: TlsOptions;
  format: NotifyFormat;
  on: NotifyKind[];
  severity?: Severity;
  timeoutMs: number;
}

/** Turns a parsed entry into its spec; `index` names unnamed entries (`notify-1`, …). */
export function toNotifySpec(entry: z.infer<typeof notifyEntrySchema>, index: number): NotifySpec {
  const hook = entry.webhook;
  const isObj = typeof hook === 'object' && 'url' in hook;
  return {
    name: entry.name ?? `notify-${index + 1}`,
    url: isObj ? hook.url : (hook as string | SecretRef),
    headers: isObj ? hook.headers : {},
    tls: isObj ? hook.tls : undefined,
    format: entry.format,
    on: [...new Set(entry.on)],
    severity: entry.severity,
    timeoutMs: entry.timeout,
  };
}

/** True when the spec wants this kind (its `on:` list and its minimum severity). */
export function wants(spec: Pick<NotifySpec, 'on' | 'severity'>, kind: NotifyKind): boolean {
  if (!spec.on.includes(kind)) return false;
  if (!spec.severity) return true;
  return SEVERITIES.indexOf(KIND_SEVERITY[kind]) >= SEVERITIES.indexOf(spec.severity);
}
