import { relative, isAbsolute } from 'node:path';
import { z } from 'zod';
import { actions, findAction } from '../actions/index.js';
import { findGate, gates } from '../gates/index.js';
import { findStateBackendType } from '../journal/backends.js';
import { notifyEntrySchema } from '../notify/config.js';
import { findProviderType, providerTypes } from '../providers/index.js';
import { schemaAt, shapeOf, typeText } from '../reference/zod-info.js';
import { routingTypes } from '../routing/index.js';
import { findTransportType } from '../transport/index.js';
import { commonStepKeys, hostSchema, topSchema } from './schema.js';
import type { Path, Source } from './source.js';
import { didYouMean, nearest } from './suggest.js';

export { didYouMean, nearest, unknownProviderMessage, yamlProblems } from './suggest.js';

/**
 * Every message a user reads about a playbook, in the project's own words: zod's texts rewritten ("Invalid input"
 * becomes "version: required (quote it: version: "1.2.0")"), "did you mean" for misspelt names, YAML syntax errors
 * one per problem with a hint, and unreadable files. load.ts calls in here; nothing here decides validity.
 */

export function unknownProviderTypeMessage(type: string): string {
  const known = providerTypes.map((p) => p.type);
  return `unknown provider type "${type}"${didYouMean(type, known)} (known: ${known.join(', ')})`;
}

/** A step with no action key: name a misspelt one when there is one. */
export function noActionMessage(where: string, keys: string[]): string {
  const known = actions.map((a) => a.key);
  for (const k of keys) {
    if (k in commonStepKeys) continue;
    const guess = nearest(k, known);
    if (guess) return `${where}: unknown step kind "${k}" (did you mean "${guess}"?)`;
  }
  return `${where}: no action; use one of ${known.join(', ')}`;
}

export function noCheckMessage(where: string, keys: string[]): string {
  const known = gates.map((g) => g.key);
  for (const k of keys) {
    if (['name', 'timeout', 'interval', 'skipOnHotfix'].includes(k)) continue;
    const guess = nearest(k, known);
    if (guess) return `${where}: unknown check "${k}" (did you mean "${guess}"?)`;
  }
  return `${where}: no check; use ${known.slice(0, -1).join(', ')} or ${known[known.length - 1]}`;
}

/** ` (did you mean {{host.address}}?)` for a misspelt template name. */
export function templateSuggestion(name: string, hostVarNames: string[], extra: readonly string[] = []): string {
  const known = ['release', 'version', 'group', 'wave', 'host.name', 'host.address', 'host.port', ...hostVarNames, ...extra];
  return didYouMean(name, known, '{{');
}

/** `cannot read nope.yaml: no such file`, the file named as the user would write it. */
export function cannotReadMessage(file: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT'
      ? 'no such file'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EISDIR'
          ? 'it is a directory'
          : (err as Error).message === 'not a regular file'
            ? 'not a regular file'
            : (code ?? (err as Error).message);
  const rel = isAbsolute(file) ? relative(process.cwd(), file) : file;
  const shown = rel && !rel.startsWith('..') ? rel : file;
  return `cannot read ${shown}: ${why}`;
}

// ---------------------------------------------------------------------------------------------------------------
// zod issues

function dotted(path: Path): string {
  return (
    path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`))
      .join('')
      .replace(/^\./, '') || '(top level)'
  );
}

function valueAt(data: unknown, path: Path): unknown {
  let cur = data;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[String(seg)];
  }
  return cur;
}

/** What a playbook key holds, for "did you mean" and "expected …": the schema at a path, through the registries. */
export function schemaForPath(data: unknown, path: Path): z.ZodTypeAny | undefined {
  const [head, second, ...rest] = path;
  const entry = (p: Path) => valueAt(data, p) as Record<string, unknown> | undefined;
  const stepSchema = (p: Path, after: Path, kinds: 'step' | 'gate'): z.ZodTypeAny | undefined => {
    const e = entry(p);
    if (!e || typeof e !== 'object') return undefined;
    const found = Object.keys(e)
      .map((k) => (kinds === 'step' ? findAction(k) : findGate(k)))
      .find(Boolean);
    const common = z.object({ ...commonStepKeys, ...(kinds === 'gate' ? { skipOnHotfix: z.boolean().optional() } : {}) });
    if (!found) return after.length === 0 ? common : undefined;
    const whole = found.stepLevel ? common.merge(found.params as unknown as z.AnyZodObject) : common.extend({ [found.key]: found.params });
    return after.length === 0 ? whole : schemaAt(whole, after);
  };
  switch (head) {
    case 'providers': {
      if (second === undefined) return schemaAt(topSchema, ['providers']);
      const type = findProviderType(String(entry(['providers', second])?.type));
      return type
        ? (schemaAt(z.object({ type: z.string() }).merge(type.options as unknown as z.AnyZodObject), rest) ?? schemaAt(type.options, rest))
        : undefined;
    }
    case 'steps':
      return second === undefined ? schemaAt(topSchema, ['steps']) : stepSchema(['steps', second], rest, 'step');
    case 'verify':
    case 'watch':
      return second === undefined ? undefined : stepSchema([head, second], rest, 'gate');
    case 'switchover':
      if (second === 'steps' && rest.length) return stepSchema(['switchover', 'steps', rest[0]!], rest.slice(1), 'step');
      return schemaAt(topSchema, path);
    case 'transport': {
      const t = findTransportType(String(entry(['transport'])?.type));
      const all = path.slice(1);
      return t ? (all.length ? schemaAt(t.options, all) : t.options) : undefined;
    }
    case 'state': {
      const s = findStateBackendType(String(entry(['state'])?.type))?.options;
      return s ? schemaAt(s, path.slice(1)) : undefined;
    }
    case 'routing': {
      if (second === undefined) return undefined;
      const t = routingTypes.find((r) => r.type === entry(['routing', second])?.type);
      return t ? schemaAt(t.options, rest) : undefined;
    }
    case 'notify':
      return second === undefined ? undefined : schemaAt(notifyEntrySchema, rest);
    case 'hosts':
      return second === undefined ? undefined : schemaAt(hostSchema, rest);
    default:
      return schemaAt(topSchema, path);
  }
}

/** An example per well-known required key, so that "required" says what to write. */
const EXAMPLES: Record<string, string> = {
  name: 'name: order-service',
  version: 'version: "1.2.0"',
  address: 'address: 10.0.0.11',
  steps: 'steps: [ { drain: dubbo }, { name: deploy, run: "..." } ]',
  type: 'type: dubbo-zookeeper',
  connect: 'connect: zk1:2181,zk2:2181',
  url: 'url: http://prometheus:9090',
  application: 'application: order-service',
};

function article(t: string): string {
  switch (t) {
    case 'array':
      return 'a list';
    case 'object':
      return 'a mapping';
    case 'null':
      return 'nothing (null)';
    case 'undefined':
      return 'nothing';
    case 'integer':
      return 'an integer';
    default:
      return /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
  }
}

/** The default zod text of an issue: when an issue's message is that, it is rewritten; our own messages are kept. */
function isDefaultText(issue: z.ZodIssue): boolean {
  try {
    return z.defaultErrorMap(issue as z.ZodIssueOptionalMessage, { defaultError: '', data: undefined }).message === issue.message;
  } catch {
    return false;
  }
}

export interface Problem {
  path: Path;
  message: string;
  key?: boolean;
}

/** A too_small / too_big issue in words: "must not be empty", "needs at least 2 entries", "must be at most 10 (got 12)". */
function boundsText(issue: z.ZodTooSmallIssue | z.ZodTooBigIssue, value: unknown): string {
  const n = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
  const small = issue.code === 'too_small';
  const op = small ? (issue.inclusive ? 'at least' : 'more than') : issue.inclusive ? 'at most' : 'less than';
  if (issue.type === 'string') return small && n === 1 ? 'must not be empty' : `must be ${op} ${n} characters long`;
  if (issue.type === 'array') return small && n === 1 ? 'needs at least one entry' : `needs ${op} ${n} entries`;
  return `must be ${op} ${n}${value !== undefined ? ` (got ${shown(value)})` : ''}`;
}

/** zod issues in the project's words, each at the path of the value it is about. */
export function zodProblems(src: Source, base: Path, error: z.ZodError): Problem[] {
  const data = src.data();
  const out: Problem[] = [];
  for (const issue of error.issues) translate(issue, out);
  return out;

  function translate(issue: z.ZodIssue, into: Problem[]): void {
    const path = [...base, ...issue.path];
    const here = dotted(path);
    const value = valueAt(data, path);
    const last = path[path.length - 1];
    const missing = () => {
      const parent = path.slice(0, -1);
      const key = String(last);
      const ex = EXAMPLES[key];
      const hint = key === 'version' ? ` (quote it: ${ex})` : ex ? ` (e.g. ${ex})` : '';
      into.push({ path: parent, message: `${here}: required${hint}` });
    };
    switch (issue.code) {
      case 'unrecognized_keys': {
        const known = Object.keys(shapeOf(schemaForPath(data, path) ?? z.never()) ?? {});
        for (const key of issue.keys) {
          const hint = didYouMean(key, known);
          const list = !hint && known.length && known.length <= 16 ? ` (known: ${known.join(', ')})` : '';
          into.push({ path: [...path, key], message: `unknown key "${key}"${path.length ? ` in ${dotted(path)}` : ''}${hint}${list}`, key: true });
        }
        return;
      }
      case 'invalid_type': {
        if (issue.received === 'undefined' && typeof last === 'string') return missing();
        if (issue.expected === 'string' && (issue.received === 'number' || issue.received === 'boolean')) {
          const raw = src.rawText(path) ?? String(value);
          return void into.push({
            path,
            message: `${here}: ${raw} is read as a ${issue.received}; a text is expected here: quote it: ${typeof last === 'string' ? `${last}: ` : ''}"${raw}"`,
          });
        }
        const raw = src.rawText(path);
        const brace = issue.received === 'object' && raw?.trim().startsWith('{{') ? `; a value that starts with {{ must be quoted: "${raw.trim()}"` : '';
        return void into.push({ path, message: `${here}: expected ${article(issue.expected)}, got ${article(issue.received)}${brace}` });
      }
      case 'invalid_union': {
        if (value === undefined && typeof last === 'string') return missing();
        // A branch that matched the value's shape and failed deeper says more than "none of them".
        const deeper = issue.unionErrors.map((e) => e.issues).filter((is) => is.every((i) => i.path.length > issue.path.length) && is.length);
        if (deeper.length === 1) return deeper[0]!.forEach((i) => translate(i, into));
        const schema = schemaForPath(data, path);
        const expected = schema ? typeText(schema) : unionExpected(issue);
        const custom = issue.unionErrors.flatMap((e) => e.issues).find((i) => i.code === 'custom');
        if (custom && typeof value !== 'object') return void into.push({ path, message: `${here}: ${custom.message}` });
        if (typeof value === 'number' && /string/.test(expected) && !/number|integer|duration/.test(expected)) {
          const raw = src.rawText(path) ?? String(value);
          return void into.push({
            path,
            message: `${here}: ${raw} is read as a number; a text is expected here: quote it: ${typeof last === 'string' ? `${last}: ` : ''}"${raw}"`,
          });
        }
        // A secret written into the file is never echoed back (error output ends up in CI logs).
        const secret = /secret/.test(expected) || (typeof last === 'string' && /pass(word)?|secret|token|credential/i.test(last));
        return void into.push({
          path,
          message: `${here}: expected ${expected}, got ${secret && typeof value !== 'object' ? 'a value written in the file (not shown: put the secret in the environment or a file)' : shown(value)}`,
        });
      }
      case 'invalid_enum_value':
        return void into.push({
          path,
          message: `${here}: ${JSON.stringify(issue.received)} is not one of ${issue.options.join(', ')}${didYouMean(String(issue.received), issue.options.map(String))}`,
        });
      case 'invalid_literal':
        return void into.push({ path, message: `${here}: must be ${JSON.stringify(issue.expected)}` });
      case 'too_small':
      case 'too_big': {
        if (!isDefaultText(issue)) return void into.push({ path, message: `${here}: ${issue.message}` });
        return void into.push({ path, message: `${here}: ${boundsText(issue, value)}` });
      }
      case 'invalid_string':
        if (!isDefaultText(issue)) return void into.push({ path, message: `${here}: ${issue.message}` });
        return void into.push({
          path,
          message: `${here}: ${shown(value)} is not a valid ${issue.validation === 'url' ? 'URL (e.g. http://host:port)' : typeof issue.validation === 'string' ? issue.validation : 'value'}`,
        });
      case 'not_multiple_of':
        return void into.push({ path, message: `${here}: must be a multiple of ${String(issue.multipleOf)}` });
      case 'not_finite':
        return void into.push({ path, message: `${here}: must be a finite number` });
      case 'custom':
        return void into.push({ path, message: `${here}: ${issue.message}` });
      default:
        return void into.push({ path, message: `${here}: ${isDefaultText(issue) ? 'not a valid value' : issue.message}` });
    }
  }
}

function unionExpected(issue: z.ZodInvalidUnionIssue): string {
  const parts = new Set<string>();
  for (const e of issue.unionErrors) {
    for (const i of e.issues) {
      if (i.code === 'invalid_type') parts.add(i.expected === 'array' ? 'a list' : i.expected === 'object' ? 'a mapping' : i.expected);
      else if (i.code === 'invalid_literal') parts.add(JSON.stringify(i.expected));
    }
  }
  return parts.size ? [...parts].join(' | ') : 'another value';
}

function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'nothing (null)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}

/** Adds zod issues to the source's issue list, each at the position of the value it is about. */
export function addZodProblems(src: Source, base: Path, error: z.ZodError): void {
  for (const p of zodProblems(src, base, error)) src.add(p.path, p.message, p.key ? { key: true } : {});
}
