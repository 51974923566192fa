import type { z } from 'zod';
import { z as zod } from 'zod';
import type { Path } from '../playbook/source.js';
import type { ProviderSpec } from '../playbook/types.js';
import { DubboConditionRule, dubboConditionDoc, dubboConditionOptions, DubboTagRule, dubboTagDoc, dubboTagOptions } from './dubbo.js';
import { NacosRule, nacosRuleDoc, nacosRuleOptions } from './nacos-rule.js';
import { NginxSplitRule, nginxSplitDoc, nginxSplitOptions } from './nginx-split.js';
import type { RoutingEnd, RoutingRule, RoutingSpec } from './types.js';
import type { ProviderEnv } from '../providers/types.js';
import { unknownProviderMessage } from '../playbook/suggest.js';

interface RoutingType {
  type: string;
  options: z.ZodTypeAny;
  /** The provider type a `provider:` option must name, when the rule uses one. */
  providerType?: string;
  create(name: string, params: any, env: ProviderEnv): RoutingRule;
  /** For the reference (graywave explain, docs/reference.md). */
  doc?: import('../reference/doc.js').TypeDoc;
}

export const routingTypes: RoutingType[] = [
  { type: 'nginx-split', options: nginxSplitOptions, create: (n, p, env) => new NginxSplitRule(n, p, env), doc: nginxSplitDoc },
  { type: 'dubbo-tag', options: dubboTagOptions, providerType: 'dubbo-zookeeper', create: (n, p) => new DubboTagRule(n, p), doc: dubboTagDoc },
  {
    type: 'dubbo-condition',
    options: dubboConditionOptions,
    providerType: 'dubbo-zookeeper',
    create: (n, p) => new DubboConditionRule(n, p),
    doc: dubboConditionDoc,
  },
  { type: 'nacos-rule', options: nacosRuleOptions, providerType: 'nacos', create: (n, p) => new NacosRule(n, p), doc: nacosRuleDoc },
];

export function createRule(spec: RoutingSpec, env: ProviderEnv): RoutingRule {
  return routingTypes.find((t) => t.type === spec.type)!.create(spec.name, spec.params, env);
}

const ruleName = zod
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'rule names may only use letters, digits, ".", "_" and "-"')
  .max(100);
const endOption = zod.enum(['final', 'keep', 'remove']).default('final');

/**
 * Validates `routing:` (a list). Problems are reported through `add` (a message at a path) and `zod` (a zod error
 * under a path), so they come out as FILE:LINE:COL like the rest of the playbook.
 */
export function parseRouting(
  raw: unknown,
  providers: Record<string, ProviderSpec>,
  add: (path: Path, message: string, opts?: { key?: boolean }) => void,
  zodIssues: (path: Path, error: z.ZodError) => void,
): RoutingSpec[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) {
    add(['routing'], 'routing: a list of rules such as {name: gray-entry, type: nginx-split, ...}');
    return [];
  }
  const out: RoutingSpec[] = [];
  raw.forEach((entry, i) => {
    const path = ['routing', i];
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return add(path, `routing[${i}]: a rule is a mapping with name and type`);
    const { name, type, end, ...rest } = entry as Record<string, unknown>;
    const n = ruleName.safeParse(name);
    if (!n.success) return name === undefined ? add(path, `missing required key "name" in routing[${i}]`) : zodIssues([...path, 'name'], n.error);
    const t = routingTypes.find((x) => x.type === type);
    if (!t)
      return add(
        type === undefined ? path : [...path, 'type'],
        `routing ${n.data}: ${type === undefined ? 'missing type' : `unknown type "${String(type)}"`} (use ${routingTypes.map((x) => x.type).join(', ')})`,
      );
    const e = endOption.safeParse(end);
    if (!e.success) return zodIssues([...path, 'end'], e.error);
    const r = t.options.safeParse(rest);
    if (!r.success) return zodIssues(path, r.error);
    if (out.some((o) => o.name === n.data)) return add([...path, 'name'], `duplicate routing rule name "${n.data}"`);
    const provider = (r.data as { provider?: string }).provider;
    if (t.providerType && provider !== undefined) {
      const p = providers[provider];
      if (!p) return add([...path, 'provider'], unknownProviderMessage(provider, providers));
      if (p.type !== t.providerType)
        return add([...path, 'provider'], `provider "${provider}" is a ${p.type} provider; ${t.type} needs a ${t.providerType} provider`);
    }
    out.push({ name: n.data, type: t.type, params: r.data, end: e.data as RoutingEnd });
  });
  return out;
}
