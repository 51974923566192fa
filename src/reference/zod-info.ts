import { z } from 'zod';

/**
 * Reads zod schemas as data: the keys an object takes, whether a key is required, its default, a one-line type.
 * Used by the messages (did you mean, what a union accepts), `graywave explain`, docs/reference.md and the JSON
 * Schema, so that all of them say the same thing about an option.
 */

type Any = z.ZodTypeAny;

/** The schema under optional / default / nullable / effects / pipeline / branded / lazy wrappers. */
export function unwrap(schema: Any): Any {
  let s: Any = schema;
  for (let i = 0; i < 20; i++) {
    const def = s._def as { typeName?: string; innerType?: Any; schema?: Any; in?: Any; type?: Any; getter?: () => Any };
    switch (def.typeName) {
      case 'ZodOptional':
      case 'ZodNullable':
      case 'ZodDefault':
      case 'ZodCatch':
      case 'ZodReadonly':
        s = def.innerType!;
        break;
      case 'ZodEffects':
        s = def.schema!;
        break;
      case 'ZodPipeline':
        s = def.in!;
        break;
      case 'ZodBranded':
        s = def.type!;
        break;
      case 'ZodLazy':
        s = def.getter!();
        break;
      default:
        return s;
    }
  }
  return s;
}

function kind(s: Any): string {
  return (s._def as { typeName: string }).typeName;
}

/** The keys of an object schema (of each object branch, for unions), with their schemas. */
export function shapeOf(schema: Any): Record<string, Any> | undefined {
  const s = unwrap(schema);
  if (s instanceof z.ZodObject) return s.shape as Record<string, Any>;
  if (s instanceof z.ZodUnion || s instanceof z.ZodDiscriminatedUnion) {
    const out: Record<string, Any> = {};
    for (const o of s.options as Any[]) Object.assign(out, shapeOf(o) ?? {});
    return Object.keys(out).length ? out : undefined;
  }
  if (s instanceof z.ZodIntersection) return { ...(shapeOf(s._def.left) ?? {}), ...(shapeOf(s._def.right) ?? {}) };
  return undefined;
}

/** The schema at a path below `schema` (object keys, array items, record values), or undefined. */
export function schemaAt(schema: Any, path: readonly (string | number)[]): Any | undefined {
  let s: Any | undefined = schema;
  for (const seg of path) {
    if (!s) return undefined;
    const u = unwrap(s);
    if (typeof seg === 'number' && u instanceof z.ZodArray) s = u.element;
    else if (u instanceof z.ZodRecord) s = u.valueSchema as Any;
    else s = shapeOf(u)?.[String(seg)];
  }
  return s;
}

/** False when the key may be left out (optional, default, or accepts undefined). */
export function isRequired(schema: Any): boolean {
  return !schema.safeParse(undefined).success;
}

/** The default a key takes when left out, if any. */
export function defaultOf(schema: Any): unknown {
  let s: Any = schema;
  for (let i = 0; i < 20; i++) {
    const def = s._def as { typeName?: string; innerType?: Any; schema?: Any; defaultValue?: () => unknown; in?: Any };
    if (def.typeName === 'ZodDefault') return def.defaultValue!();
    if (def.typeName === 'ZodOptional' || def.typeName === 'ZodNullable') s = def.innerType!;
    else if (def.typeName === 'ZodEffects') s = def.schema!;
    else if (def.typeName === 'ZodPipeline') s = def.in!;
    else return undefined;
  }
  return undefined;
}

/** The description given with zod's .describe(), looking through wrappers. */
export function descriptionOf(schema: Any): string | undefined {
  let s: Any = schema;
  for (let i = 0; i < 20; i++) {
    if (s.description) return s.description;
    const next = unwrapOnce(s);
    if (!next) return undefined;
    s = next;
  }
  return undefined;
}

function unwrapOnce(s: Any): Any | undefined {
  const def = s._def as { typeName?: string; innerType?: Any; schema?: Any; in?: Any };
  return def.innerType ?? def.schema ?? (def.typeName === 'ZodPipeline' ? def.in : undefined);
}

/** A short human type: `string`, `integer 1–65535`, `duration`, `none | approve | duration`, `list of string` … */
export function typeText(schema: Any, depth = 0): string {
  if (isDuration(schema)) return 'duration (30s, 5m)';
  if (isSecretRef(schema)) return 'secret ({ env: NAME } or { file: PATH })';
  const s = unwrap(schema);
  if (depth > 3) return 'value';
  switch (kind(s)) {
    case 'ZodString': {
      const checks = (s as z.ZodString)._def.checks;
      if (checks.some((c) => c.kind === 'url')) return 'URL';
      return 'string';
    }
    case 'ZodNumber': {
      const checks = (s as z.ZodNumber)._def.checks;
      const int = checks.some((c) => c.kind === 'int');
      const min = checks.find((c) => c.kind === 'min') as { value: number; inclusive: boolean } | undefined;
      const max = checks.find((c) => c.kind === 'max') as { value: number } | undefined;
      const base = int ? 'integer' : 'number';
      if (min && max) return `${base} ${min.value}–${max.value}`;
      if (min) return `${base} ≥ ${min.inclusive ? min.value : `${min.value} (exclusive)`}`;
      return base;
    }
    case 'ZodBoolean':
      return 'true | false';
    case 'ZodLiteral':
      return JSON.stringify((s as z.ZodLiteral<unknown>).value);
    case 'ZodEnum':
      return ((s as z.ZodEnum<[string, ...string[]]>).options as string[]).join(' | ');
    case 'ZodArray':
      return `list of ${typeText((s as z.ZodArray<Any>).element, depth + 1)}`;
    case 'ZodRecord':
      return `mapping of ${typeText((s as z.ZodRecord).valueSchema as Any, depth + 1)}`;
    case 'ZodObject':
      return 'mapping';
    case 'ZodUnion':
    case 'ZodDiscriminatedUnion': {
      const parts = [...new Set(((s as z.ZodUnion<[Any, ...Any[]]>).options as Any[]).map((o) => typeText(o, depth + 1)))];
      return parts.join(' | ');
    }
    case 'ZodUnknown':
    case 'ZodAny':
      return 'any value';
    default:
      return 'value';
  }
}

/** Durations (src/util/duration.ts) are a union of string and number through a transform. */
function isDuration(schema: Any): boolean {
  let s: Any = schema;
  for (let i = 0; i < 10; i++) {
    const def = s._def as { typeName?: string; innerType?: Any; schema?: Any; effect?: { transform?: { toString(): string } } };
    if (def.typeName === 'ZodEffects' && def.effect && String((def.effect as { transform?: unknown }).transform ?? '').includes('parseDuration')) return true;
    if (def.typeName === 'ZodOptional' || def.typeName === 'ZodDefault' || def.typeName === 'ZodNullable') s = def.innerType!;
    else return false;
  }
  return false;
}

function isSecretRef(schema: Any): boolean {
  const s = unwrap(schema);
  if (!(s instanceof z.ZodUnion)) return false;
  if (!(s.options as Any[]).every((o) => unwrap(o) instanceof z.ZodObject)) return false;
  const keys = Object.keys(shapeOf(s) ?? {});
  return keys.length === 2 && keys.includes('env') && keys.includes('file');
}

/** One row per option of an object schema: key, type, required, default, description. */
export interface OptionRow {
  key: string;
  type: string;
  required: boolean;
  default?: unknown;
  description?: string;
  /** Nested options (a mapping option's own keys), one level deep. */
  children?: OptionRow[];
}

export function optionRows(schema: Any, depth = 0): OptionRow[] {
  const shape = shapeOf(schema);
  if (!shape) return [];
  return Object.entries(shape).map(([key, s]) => {
    const row: OptionRow = { key, type: typeText(s), required: isRequired(s) };
    const d = defaultOf(s);
    if (d !== undefined) row.default = d;
    const desc = descriptionOf(s);
    if (desc) row.description = desc;
    const inner = unwrap(s);
    if (depth < 1 && inner instanceof z.ZodObject && !isSecretRef(s)) row.children = optionRows(inner, depth + 1);
    return row;
  });
}
