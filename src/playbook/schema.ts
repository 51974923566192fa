import { z } from 'zod';
import { duration } from '../util/duration.js';

/** `25%` or an integer host count. */
const percentOrCount = z.union([z.number().int().positive(), z.string().regex(/^\d+(\.\d+)?%$/, 'must be a percentage like 25% or a whole number of hosts')]);

/** What happens between two waves: nothing, a person's approval, or a wait. */
const pauseValue = z.union([z.literal('none'), z.literal('approve'), duration]);

const hostName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'host names may only use letters, digits, ".", "_" and "-" (they name log files and journal keys)');

export const hostSchema = z
  .object({
    name: hostName,
    address: z
      .string()
      .min(1)
      .max(255)
      .regex(/^[A-Za-z0-9:._%[\]-]+$/, 'not a host name or IP address'),
    aliases: z
      .array(
        z
          .string()
          .min(1)
          .max(255)
          .regex(/^[A-Za-z0-9:._%[\]-]+$/, 'not a host name or IP address'),
      )
      .optional(),
    port: z.number().int().min(1).max(65535).optional(),
    /** This host's own ssh settings; the playbook's `transport` is the default for what is left out. */
    ssh: z
      .object({
        user: z.string().min(1).optional(),
        port: z.number().int().min(1).max(65535).optional(),
        identityFile: z.string().min(1).optional(),
        /** ProxyJump: `[user@]host[:port]`, several hops comma-separated, or `none`. */
        jumpHost: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    vars: z.record(z.unknown()).default({}),
    labels: z.record(z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}),
  })
  .strict();

export const hostsSchema = z.array(hostSchema);

export const wavesSchema = z
  .object({
    canary: z.number().int().min(0).optional(),
    size: percentOrCount.default('25%'),
    concurrency: z.number().int().min(1).max(10_000).optional(),
    maxFailures: z.number().int().min(0).default(0),
    /** One value for every gap between waves, or `{ afterCanary: approve, between: 5m }`. */
    pause: z.union([pauseValue, z.object({ afterCanary: pauseValue.optional(), between: pauseValue.optional() }).strict()]).default('none'),
    /** Label-based waves (src/plan/labels.ts): group hosts by this label, one group after another. */
    by: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, 'a label name such as set or zone')
      .optional(),
    /** Label values in release order (least important first). */
    order: z
      .array(z.union([z.string(), z.number()]).transform(String))
      .min(1)
      .optional(),
    /** With `by`: at most this many hosts of one group (zone) per wave. */
    maxPerZone: z.number().int().min(1).optional(),
    /** `rolling`: keep `inFlight` hosts going across the fleet instead of lock-step waves; gates every `every`. */
    mode: z.enum(['waves', 'rolling']).default('waves'),
    inFlight: z.number().int().min(1).max(10_000).optional(),
    every: percentOrCount.optional(),
  })
  .strict();

/** Everything at the top level; steps/verify/providers are checked item by item afterwards (they depend on registries). */
export const topSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'release names may only use letters, digits, ".", "_" and "-" (they name the state directory)'),
    version: z
      .string()
      .min(1)
      .pipe(
        z
          .string()
          .max(128)
          .regex(
            /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/,
            'versions may only use letters, digits, ".", "_", "+", "~" and "-" (they name release directories and artifact paths)',
          ),
      ),
    group: z
      .string()
      .min(1)
      .regex(/^[A-Za-z0-9_-]+$/)
      .default('GREEN'),
    hosts: z.unknown().optional(),
    /** A file, `{command: "..."}` printing YAML/JSON hosts, or `{provider: NAME, service: ...}` (src/playbook/inventory.ts). */
    inventory: z.unknown().optional(),
    routing: z.array(z.unknown()).optional(),
    /** `hotfix`: a canary, then one wave; gates marked skipOnHotfix are skipped. Needs `reason`. */
    policy: z.enum(['normal', 'hotfix']).default('normal'),
    reason: z.string().min(1).max(500).optional(),
    transport: z
      .object({ type: z.string().min(1) })
      .passthrough()
      .default({ type: 'local' }),
    waves: wavesSchema.default({}),
    providers: z.record(z.unknown()).default({}),
    steps: z.array(z.unknown()).min(1, 'a playbook needs at least one step'),
    verify: z.array(z.unknown()).default([]),
    watch: z.array(z.unknown()).default([]),
    onFailure: z.enum(['halt', 'rollback-wave', 'rollback-all', 'freeze']).default('halt'),
    /** How long a restore step waits for each system to read the host back as serving (default 2m; per step: restore.restoreTimeout). */
    restoreTimeout: duration.optional(),
    /** Where the journal and lock live: files (default), or a shared etcd/ZooKeeper cluster for teams. */
    state: z
      .object({ type: z.string().min(1) })
      .passthrough()
      .optional(),
    /** Webhook notifications; each entry is checked by src/notify/config.ts. */
    notify: z.array(z.unknown()).default([]),
    switchover: z
      .object({
        at: z.string().regex(/^\d+(\.\d+)?%$/, 'must be a percentage like 50%'),
        steps: z.array(z.unknown()).min(1),
      })
      .strict()
      .optional(),
  })
  .strict();

/** Keys every step may carry beside its action key. */
export const commonStepKeys = {
  name: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[A-Za-z0-9][A-Za-z0-9:._-]*$/, 'step names may only use letters, digits, ":", ".", "_" and "-"')
    .optional()
    .describe('Step name: its key in the journal and in plan/status (default: the kind and its provider, e.g. drain:dubbo).'),
  timeout: duration.optional().describe('How long one attempt may take, polling included (default 10m).'),
  retries: z.number().int().min(0).max(100).optional().describe('Attempts after a failed one, with backoff (default 0).'),
  interval: duration
    .optional()
    .describe("How often the step's read-back is polled until it holds (default 1s); for a watch: check, how often it runs (default 10s)."),
  /** Free labels of the step; `deploy` marks a step a train app with `deploy: false` skips (src/playbook/train.ts). */
  tags: z
    .array(
      z
        .string()
        .min(1)
        .max(64)
        .regex(/^[A-Za-z0-9_.-]+$/, 'tags use letters, digits, ".", "_" and "-"'),
    )
    .optional()
    .describe('Free labels of the step; `deploy` marks a deploy step that a release-train app with `deploy: false` skips.'),
};
