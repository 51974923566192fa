import { isScalar, parse } from 'yaml';
import { EXIT, GraywaveError } from '../errors.js';
import { didYouMean } from './messages.js';
import { schemaAt, shapeOf, unwrap } from '../reference/zod-info.js';
import { topSchema } from './schema.js';
import type { Source } from './source.js';
import { z } from 'zod';

/**
 * `--set version=2.4.1` (CI): replaces top-level scalars of the playbook (and scalars one level down, such as
 * `waves.canary=1`) before validation, so every check applies to the value given. A value is text where the key
 * takes text (`version=3.10` stays "3.10"), else read as YAML (numbers, true/false).
 */
let current: Record<string, string> = {};

/** Set once by the CLI edge for every playbook this process loads. */
export function setOverrides(pairs: string[] | undefined): void {
  current = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new GraywaveError(`--set ${pair}: expected KEY=VALUE (e.g. --set version=2.4.1)`, EXIT.usage);
    const key = pair.slice(0, eq);
    const path = key.split('.');
    const top = Object.keys(shapeOf(topSchema) ?? {});
    if (!top.includes(path[0]!)) throw new GraywaveError(`--set ${key}: unknown key "${path[0]}"${didYouMean(path[0]!, top)}`, EXIT.usage);
    const schema = schemaAt(topSchema, path);
    const inner = schema && unwrap(schema);
    if (!schema || inner instanceof z.ZodObject || inner instanceof z.ZodArray || inner instanceof z.ZodRecord || inner instanceof z.ZodUnknown) {
      throw new GraywaveError(`--set ${key}: only single values can be set (name, version, group, waves.size …), not a list or a mapping`, EXIT.usage);
    }
    current[key] = pair.slice(eq + 1);
  }
}

/** Runs `fn` without the overrides (a train's --set is the train's, not its apps'). */
export function withoutOverrides<T>(fn: () => T): T {
  const saved = current;
  current = {};
  try {
    return fn();
  } finally {
    current = saved;
  }
}

export function applyOverrides(src: Source): void {
  for (const [key, raw] of Object.entries(current)) {
    const path = key.split('.');
    const schema = schemaAt(topSchema, path)!;
    const value = schema.safeParse(raw).success ? raw : parse(raw);
    const existing = src.doc.getIn(path, true);
    if (existing !== undefined && !isScalar(existing)) continue;
    src.doc.setIn(path, value);
  }
}

/** The overrides in effect (for tests and for `plan` to show). */
export function overrides(): Readonly<Record<string, string>> {
  return current;
}
