/**
 * `type: nacos-rule` — a version-weight document in the Nacos config centre (shared/reference/protocols.md §2.5),
 * on the address, namespace and credentials of a `nacos` provider of the playbook (`provider: NAME`).
 *
 *   routing:
 *     - name: version-weights
 *       type: nacos-rule
 *       provider: nacos
 *       dataId: gray-rules
 *       group: DEFAULT_GROUP                     # config group (default)
 *       format: "{{service}}:{{blueVersion}}={{blueWeight}};{{greenVersion}}={{greenWeight}}"
 *       service: order-service                   # default: the release name
 *       blueVersion: "1.0"                       # the version being replaced (default: read from the document, below)
 *       greenVersion: "1.1"                      # default: the playbook version
 *       weights: [10, 50, 100]                   # GREEN % after wave 1, 2, 3 (default: GREEN's share of the hosts)
 *
 * The document is edited line by line: graywave's line is the one starting with the format's text before the first
 * version/weight value (`order-service:` above); other lines stay as they are. A format that starts with a value
 * owns the whole document. Publishing is last-writer-wins in Nacos, so each write is read, modify, publish, read
 * back. Undo puts back the exact previous document when nobody changed it since; otherwise just graywave's line.
 *
 * Without `blueVersion` the BLUE version comes from graywave's line already in the document, read through `format`:
 * this release's own line (resume) keeps its BLUE version; a line of an earlier release gives the version that held
 * the larger weight there (the one the fleet runs; a tie: its GREEN version). With neither `blueVersion` nor such a
 * line, the rule fails before writing anything, asking for `blueVersion`.
 */
import { z } from 'zod';
import { ProviderError } from '../errors.js';
import { nacosProviderType, type NacosOptions } from '../providers/registry/nacos.js';
import { http } from '../transport/http.js';
import { resolveTls, type TlsSettings } from '../transport/tls.js';
import type { SecretRef } from '../util/secrets.js';
import { render } from '../util/template.js';
import { weightAt, type RoutingContext, type RoutingPoint, type RoutingRule } from './types.js';

export const nacosRuleOptions = z
  .object({
    provider: z.string().min(1),
    dataId: z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits, ".", ":", "_" and "-" only'),
    group: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]+$/)
      .default('DEFAULT_GROUP'),
    format: z
      .string()
      .min(1)
      .refine((f) => !f.includes('\n'), 'one line'),
    service: z.string().min(1).optional(),
    blueVersion: z
      .union([z.string().min(1), z.number()])
      .transform(String)
      .optional(),
    greenVersion: z
      .union([z.string().min(1), z.number()])
      .transform(String)
      .optional(),
    weights: z.array(z.number().min(0).max(100)).min(1).optional(),
    /** Content type Nacos shows (text, properties, yaml, …). */
    contentType: z
      .string()
      .regex(/^[a-z]+$/)
      .default('text'),
  })
  .strict();
export type NacosRuleOptions = z.infer<typeof nacosRuleOptions>;

const VALUE_NAMES = ['blueVersion', 'greenVersion', 'blueWeight', 'greenWeight'];

/** The rendered line for a GREEN weight, and the prefix that identifies graywave's line ('' = the whole document). */
export function ruleLine(
  o: NacosRuleOptions,
  release: { name: string; version: string; group: string },
  greenWeight: number,
): { line: string; prefix: string } {
  const w = Math.round(greenWeight * 100) / 100;
  const extra = {
    service: o.service ?? release.name,
    blueVersion: o.blueVersion ?? '',
    greenVersion: o.greenVersion ?? release.version,
    blueWeight: Math.round((100 - w) * 100) / 100,
    greenWeight: w,
  };
  const values = { release: release.name, version: release.version, group: release.group, extra };
  const first = Math.min(...VALUE_NAMES.map((n) => o.format.search(new RegExp(`\\{\\{\\s*${n}\\s*\\}\\}`))).filter((i) => i >= 0));
  const prefix = Number.isFinite(first) ? render(o.format.slice(0, first), values) : render(o.format, values);
  return { line: render(o.format, values), prefix };
}

const escapeRe = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Reads a line written with `format` back into its values (undefined when it does not match). Versions match any
 * text, weights numbers; the other names ({{service}} …) must read as they render now.
 */
export function parseRuleLine(
  format: string,
  line: string,
  release: { name: string; version: string; group: string },
  service: string,
): Partial<Record<'blueVersion' | 'greenVersion' | 'blueWeight' | 'greenWeight', string>> | undefined {
  const values = { release: release.name, version: release.version, group: release.group, extra: { service } };
  const token = /\{\{\s*(blueVersion|greenVersion|blueWeight|greenWeight)\s*\}\}/g;
  const names: string[] = [];
  let src = '';
  let last = 0;
  for (const m of format.matchAll(token)) {
    src += escapeRe(render(format.slice(last, m.index), values));
    last = m.index! + m[0].length;
    names.push(m[1]!);
    src += m[1]!.endsWith('Weight') ? '(-?\\d+(?:\\.\\d+)?)' : '(.+?)';
  }
  src += escapeRe(render(format.slice(last), values));
  const m = new RegExp(`^${src}$`).exec(line);
  if (!m) return undefined;
  const out: Partial<Record<'blueVersion' | 'greenVersion' | 'blueWeight' | 'greenWeight', string>> = {};
  names.forEach((n, i) => ((out as Record<string, string>)[n] ??= m[i + 1]!));
  return out;
}

/** `content` with graywave's line set to `line` (null: taken out). */
export function withLine(content: string | null, prefix: string, line: string | null): string | null {
  if (!prefix) return line;
  const lines = content === null || content === '' ? [] : content.split('\n');
  const i = lines.findIndex((l) => l.startsWith(prefix));
  if (line === null) {
    if (i < 0) return content;
    lines.splice(i, 1);
  } else if (i >= 0) lines[i] = line;
  else lines.push(line);
  return lines.length ? lines.join('\n') : null;
}

interface Saved {
  dataId: string;
  group: string;
  before: string | null;
  after: string | null;
  prefix: string;
}

export class NacosRule implements RoutingRule {
  private token?: string;
  /** The BLUE version, once known (the option, or read from the document). */
  private blue?: string;
  /** The nacos provider's `tls:` settings, resolved once (files read, agent made on first use). */
  private tls?: { settings: TlsSettings | undefined };

  constructor(
    private readonly name: string,
    private readonly o: NacosRuleOptions,
  ) {}

  private conn(ctx: RoutingContext): NacosOptions & { user?: string; pass?: string } {
    const spec = ctx.playbook.providers[this.o.provider];
    if (!spec || spec.type !== 'nacos') throw new ProviderError(`routing ${this.name}: provider ${this.o.provider} is not a nacos provider`, false);
    const o = nacosProviderType.options.parse(spec.options) as NacosOptions;
    const user = o.username === undefined ? undefined : typeof o.username === 'string' ? o.username : ctx.env.secrets.resolve(o.username as SecretRef);
    const pass = o.password === undefined ? undefined : ctx.env.secrets.resolve(o.password);
    this.tls ??= { settings: resolveTls(o.tls, ctx.env) };
    return { ...o, user, pass };
  }

  async close(): Promise<void> {
    await this.tls?.settings?.close();
  }

  private async call(ctx: RoutingContext, method: 'GET' | 'POST' | 'DELETE', extra: Record<string, string> = {}) {
    const c = this.conn(ctx);
    const tls = this.tls?.settings;
    const base = c.url.replace(/\/+$/, '');
    if (c.user !== undefined && c.pass !== undefined && !this.token) {
      const res = await http(`${base}/nacos/v1/auth/login`, {
        method: 'POST',
        body: new URLSearchParams({ username: c.user, password: c.pass }),
        signal: ctx.signal,
        timeoutMs: c.timeout,
        tls,
      });
      const token = res.status === 200 ? res.json<{ accessToken?: string }>().accessToken : undefined;
      if (!token) throw new ProviderError(`routing ${this.name}: Nacos login as ${c.user} failed (HTTP ${res.status})`, false);
      ctx.env.secrets.add(token);
      this.token = token;
    }
    const params: Record<string, string> = {
      dataId: this.o.dataId,
      group: this.o.group,
      ...(c.namespace !== 'public' ? { tenant: c.namespace } : {}),
      ...extra,
    };
    if (this.token) params.accessToken = this.token;
    const q = new URLSearchParams(params);
    const url = `${base}/nacos/v1/cs/configs`;
    return method === 'POST'
      ? http(url, { method, body: q, signal: ctx.signal, timeoutMs: c.timeout, tls })
      : http(`${url}?${q}`, { method, signal: ctx.signal, timeoutMs: c.timeout, tls });
  }

  private where(): string {
    return `routing ${this.name}: Nacos config ${this.o.group}/${this.o.dataId}`;
  }

  /** The document, or null when it does not exist. */
  async read(ctx: RoutingContext): Promise<string | null> {
    const res = await this.call(ctx, 'GET');
    if (res.status === 404) return null;
    if (res.status !== 200) throw new ProviderError(`${this.where()}: read failed: HTTP ${res.status} ${res.text.slice(0, 200)}`, res.status >= 500);
    return res.text;
  }

  private async write(ctx: RoutingContext, content: string | null): Promise<void> {
    const res = content === null ? await this.call(ctx, 'DELETE') : await this.call(ctx, 'POST', { content, type: this.o.contentType });
    if (res.status !== 200 || res.text.trim() !== 'true')
      throw new ProviderError(
        `${this.where()}: ${content === null ? 'delete' : 'publish'} failed: HTTP ${res.status} ${res.text.slice(0, 200)}`,
        res.status >= 500,
      );
    const back = await this.read(ctx);
    if (back !== content)
      throw new ProviderError(`${this.where()}: read back ${JSON.stringify(back)} after writing ${JSON.stringify(content)} (another writer?)`);
  }

  /** The BLUE version: the option, or read from graywave's line in `doc` (see the top of this file). */
  private blueVersion(ctx: RoutingContext, doc: string | null): string {
    this.blue ??= this.o.blueVersion;
    if (this.blue !== undefined) return this.blue;
    if (!/\{\{\s*blueVersion\s*\}\}/.test(this.o.format)) return (this.blue = '');
    const pb = ctx.playbook;
    const release = { name: pb.name, version: pb.version, group: pb.group };
    const { prefix } = ruleLine({ ...this.o, blueVersion: '' }, release, 0);
    const green = this.o.greenVersion ?? pb.version;
    const mine = doc === null ? undefined : prefix ? doc.split('\n').find((l) => l.startsWith(prefix)) : doc;
    const v = mine === undefined ? undefined : parseRuleLine(this.o.format, mine, release, this.o.service ?? pb.name);
    let blue: string | undefined;
    if (v && v.greenVersion === green && v.blueVersion !== undefined) blue = v.blueVersion;
    else if (v) blue = Number(v.blueWeight ?? 0) > Number(v.greenWeight ?? 0) ? v.blueVersion : (v.greenVersion ?? v.blueVersion);
    if (blue === undefined || blue === '') {
      const why =
        doc === null
          ? 'the document does not exist yet'
          : mine === undefined
            ? `the document has no line starting with ${JSON.stringify(prefix)}`
            : `its line ${JSON.stringify(mine)} does not read as ${JSON.stringify(this.o.format)}`;
      throw new ProviderError(`${this.where()}: the BLUE version (being replaced) is unknown: ${why}; set blueVersion: in the rule`, false);
    }
    ctx.log(`${this.where()}: BLUE version ${blue}, read from ${JSON.stringify(mine)}`);
    return (this.blue = blue);
  }

  private line(point: RoutingPoint, ctx: RoutingContext, doc: string | null) {
    const pb = ctx.playbook;
    return ruleLine(
      { ...this.o, blueVersion: this.blueVersion(ctx, doc) },
      { name: pb.name, version: pb.version, group: pb.group },
      weightAt(point, this.o.weights),
    );
  }

  async apply(point: RoutingPoint, ctx: RoutingContext) {
    const before = await this.read(ctx);
    const { line, prefix } = this.line(point, ctx, before);
    const after = withLine(before, prefix, line);
    if (after === before) return undefined;
    await this.write(ctx, after);
    const saved: Saved = { dataId: this.o.dataId, group: this.o.group, before, after, prefix };
    return { summary: `${this.o.group}/${this.o.dataId}: ${line}`, data: saved };
  }

  async verify(point: RoutingPoint, ctx: RoutingContext): Promise<string> {
    const now = await this.read(ctx);
    const { line, prefix } = this.line(point, ctx, now);
    const ok = prefix ? (now ?? '').split('\n').includes(line) : now === line;
    if (!ok) throw new ProviderError(`${this.where()}: expected ${JSON.stringify(line)}, read back ${JSON.stringify(now)}`);
    return line;
  }

  async undo(data: unknown, ctx: RoutingContext): Promise<void> {
    const s = data as Saved;
    if (!s || typeof s.prefix !== 'string' || !('before' in s))
      throw new ProviderError(`routing ${this.name}: the journal entry of the change is not readable`, false);
    const now = await this.read(ctx);
    if (now === s.before) return;
    if (now === s.after || !s.prefix) return this.write(ctx, s.before);
    // Someone else changed the document since: put back only graywave's line.
    const prevLine = (s.before ?? '').split('\n').find((l) => l.startsWith(s.prefix)) ?? null;
    await this.write(ctx, withLine(now, s.prefix, prevLine));
  }
}

/** For the reference (graywave explain, docs/reference.md). */
export const nacosRuleDoc: import('../reference/doc.js').TypeDoc = {
  options: {
    provider: 'A nacos provider of the playbook: its address, namespace and credentials.',
    dataId: 'Nacos config dataId of the rule document.',
    group: 'Nacos config group of the document.',
    format:
      "graywave's line in the document, with {{service}}, {{blueVersion}}, {{blueWeight}}, {{greenVersion}}, {{greenWeight}}; the text before the first value identifies the line.",
    service: 'The {{service}} value; default the release name.',
    blueVersion: "The version being replaced; default read from graywave's line already in the document.",
    greenVersion: "The new version; default the playbook's version.",
    weights: "GREEN % after wave 1, 2, … (default: GREEN's share of the hosts).",
    contentType: 'Nacos config type the document is published as (text, properties, yaml, json).',
  },
  summary:
    "A version-weight document in Nacos config (`format`, e.g. `1.0=75;1.1=25`) that the consumers' gray router reads: GREEN's share grows after each verified wave (`weights`, default the fleet share).",
  checkedAgainst: 'a local server answering the Nacos config API shapes (Nacos does not install here)',
  example:
    'name: version-weights\ntype: nacos-rule\nprovider: nacos\ndataId: order-gray-rule\nformat: "{{blueVersion}}={{blueWeight}};{{greenVersion}}={{greenWeight}}"\nblueVersion: "1.0"',
};
