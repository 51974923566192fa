/**
 * `type: nginx-split` — a gray entry in front of two nginx upstreams. graywave owns one file (`file`), which
 * defines `$graywave_upstream` (option `variable`); the site's own config proxies to `http://$graywave_upstream`
 * and defines the `blue` and `green` upstreams.
 *
 *   - requests with cookie `gray=GREEN` (option `cookie`) or header `x-gray-group: GREEN` (option `header`) → green;
 *   - of the other requests, weight% → green (a `split_clients` on `$request_id`, option `splitOn`), the rest → blue.
 *
 * Each change writes the whole file (temp file + mv, the previous file kept as `.NAME.graywave-bak` next to it),
 * runs `test` — putting the previous file back when it fails — and `reload`; it then waits until requests see the
 * new state when `probe` is given (with the cookie: every answer GREEN; weight 0/100: no/every answer GREEN).
 * Undo writes back the exact previous content; a file that did not exist is removed again (when the site config
 * needs it, `test` fails without it: then an all-BLUE file is left instead, and the log says so).
 */
import { isAbsolute, resolve } from 'node:path';
import { quote } from 'shell-quote';
import { z } from 'zod';
import { ProviderError } from '../errors.js';
import { allOrNone, atOption, places, run, serialize, why, type Place } from '../providers/lb/at.js';
import { http } from '../transport/http.js';
import { resolveTls, tlsOptions, type TlsSettings } from '../transport/tls.js';
import { duration } from '../util/duration.js';
import { weightAt, type RoutingContext, type RoutingPoint, type RoutingRule } from './types.js';

const ident = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, ".", "_" and "-" only');

export const nginxSplitOptions = z
  .object({
    at: atOption,
    file: z.string().min(1),
    blue: ident,
    green: ident,
    cookie: z
      .string()
      .regex(/^[A-Za-z0-9_-]+=[A-Za-z0-9_.-]+$/, 'must read NAME=VALUE, e.g. gray=GREEN')
      .default('gray=GREEN'),
    /** Header that pins a request to GREEN (with the cookie's value). */
    header: z
      .string()
      .regex(/^[A-Za-z0-9-]+$/, 'a header name such as x-gray-group')
      .default('x-gray-group'),
    weights: z.array(z.number().min(0).max(100)).min(1).optional(),
    variable: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .default('graywave_upstream'),
    splitOn: z
      .string()
      .regex(/^\$[A-Za-z_][A-Za-z0-9_]*$/, 'an nginx variable such as $request_id')
      .default('$request_id'),
    test: z.string().min(1).default('nginx -t'),
    reload: z.string().min(1).default('nginx -s reload'),
    /** Read the entry back through nginx: requests to `url`; an answer whose body contains `green` came from GREEN. */
    probe: z
      .object({
        url: z.string().url(),
        green: z.string().min(1),
        requests: z.number().int().min(1).max(1000).default(20),
        /** An https:// entry behind a private CA (src/transport/tls.ts). */
        tls: tlsOptions.optional(),
      })
      .strict()
      .optional(),
    /** Limit for each command, and for the probe to see the new state. */
    timeout: duration.default('30s'),
  })
  .strict();
export type NginxSplitOptions = z.infer<typeof nginxSplitOptions>;

const HEADER_LINE = '# graywave: this file is written by graywave (routing rule';

/** The owned file for `weight` % of unpinned requests to GREEN. */
export function splitConfig(o: NginxSplitOptions, rule: string, weight: number): string {
  const [cookieName, cookieValue] = o.cookie.split('=') as [string, string];
  const v = o.variable;
  const headerVar = `$http_${o.header.toLowerCase().replace(/-/g, '_')}`;
  const val = cookieValue.replace(/[.]/g, '\\.');
  const w = Math.round(weight * 100) / 100;
  const split = w <= 0 ? [`    * ${o.blue};`] : w >= 100 ? [`    * ${o.green};`] : [`    ${w}% ${o.green};`, `    * ${o.blue};`];
  return [
    `${HEADER_LINE} ${rule}); edits are overwritten`,
    `# GREEN: cookie ${o.cookie} or header ${o.header}: ${cookieValue}; other requests: ${w}% GREEN`,
    `split_clients "${o.splitOn}" $${v}_split {`,
    ...split,
    '}',
    `map "$cookie_${cookieName}#${headerVar}" $${v} {`,
    `    default $${v}_split;`,
    `    "~^${val}#" ${o.green};`,
    `    "~#${val}$" ${o.green};`,
    '}',
    '',
  ].join('\n');
}

/** Undo data of one change. */
interface Saved {
  file: string;
  /** Per place: the file's content before the change (null: there was none). */
  before: Record<string, string | null>;
  weight: number;
}

function isSaved(v: unknown): v is Saved {
  const s = v as Saved;
  return !!s && typeof s === 'object' && typeof s.file === 'string' && !!s.before && typeof s.before === 'object';
}

export class NginxSplitRule implements RoutingRule {
  private readonly places: Place[];
  private readonly file: string;
  /** probe.tls, resolved on the first probe. */
  private probeTls?: { settings: TlsSettings | undefined };

  constructor(
    private readonly name: string,
    private readonly o: NginxSplitOptions,
    env: { dir: string } & Parameters<typeof places>[1],
  ) {
    this.places = places(o.at, env);
    if (!isAbsolute(o.file) && o.at.some((a) => a !== 'local')) throw new Error(`file ${o.file} must be an absolute path when nginx runs on other machines`);
    this.file = isAbsolute(o.file) ? o.file : resolve(env.dir, o.file);
  }

  private where(p: Place): string {
    return `routing ${this.name}: nginx on ${p.label} (${this.file})`;
  }

  private exec(p: Place, ctx: RoutingContext, command: string, input?: string) {
    return run(p, command, { timeoutMs: this.o.timeout, signal: ctx.signal, input });
  }

  /** The file's content, or null when it does not exist. */
  private async read(p: Place, ctx: RoutingContext): Promise<string | null> {
    const q = quote([this.file]);
    const res = await this.exec(p, ctx, `if [ -e ${q} ]; then printf 'Y'; cat -- ${q}; else printf 'N'; fi`);
    if (res.code !== 0) throw new ProviderError(`${this.where(p)}: cannot read the file (${why(res)})`, false);
    return res.stdout.startsWith('Y') ? res.stdout.slice(1) : null;
  }

  /** Writes `text` (null: removes the file), tests, reloads; puts the previous file back when test or reload fails. */
  private async write(p: Place, ctx: RoutingContext, text: string | null, what: string): Promise<void> {
    const q = quote([this.file]);
    const paths = `c=${q}; d=$(dirname -- "$c"); n=$(basename -- "$c"); b="$d/.$n.graywave-bak"; t="$d/.$n.graywave-tmp"`;
    const save = `if [ -e "$c" ]; then cp -p -- "$c" "$b"; else rm -f -- "$b"; fi`;
    const cmd = text === null ? `set -e; ${paths}; ${save}; rm -f -- "$c"` : `set -e; ${paths}; ${save}; cat > "$t"; mv -f -- "$t" "$c"`;
    const w = await this.exec(p, ctx, cmd, text ?? undefined);
    if (w.code !== 0) throw new ProviderError(`${this.where(p)}: could not write the file while ${what} (${why(w)})`);
    const putBack = async () => {
      const r = await this.exec(p, ctx, `set -e; ${paths}; if [ -e "$b" ]; then cp -p -- "$b" "$t"; mv -f -- "$t" "$c"; else rm -f -- "$c"; fi`);
      return r.code === 0 ? 'the previous file was put back' : `putting the previous file back FAILED (${why(r)}): restore it from .<name>.graywave-bak`;
    };
    const test = await this.exec(p, ctx, this.o.test);
    if (test.code !== 0) throw new ProviderError(`${this.where(p)}: \`${this.o.test}\` failed after ${what} (${why(test)}); ${await putBack()}`, false);
    const reload = await this.exec(p, ctx, this.o.reload);
    if (reload.code !== 0) throw new ProviderError(`${this.where(p)}: \`${this.o.reload}\` failed after ${what} (${why(reload)}); ${await putBack()}`);
    ctx.log(`${this.where(p)}: ${what}: test passed, reloaded`);
  }

  async apply(point: RoutingPoint, ctx: RoutingContext) {
    const weight = weightAt(point, this.o.weights);
    const text = splitConfig(this.o, this.name, weight);
    const before: Record<string, string | null> = {};
    const done = await allOrNone(
      this.places,
      (p) =>
        serialize(`nginx\0${p.label}\0${this.file}`, async () => {
          const cur = await this.read(p, ctx);
          if (cur === text) return false;
          before[p.label] = cur;
          await this.write(p, ctx, text, `sending ${weight}% to ${this.o.green}`);
          return true;
        }),
      async (p, changed) => {
        if (changed) await this.write(p, ctx, before[p.label] ?? null, 'putting the previous entry back');
      },
    );
    if (!done.some((d) => d.result)) return undefined;
    const saved: Saved = { file: this.file, before, weight };
    return { summary: `${weight}% of unpinned requests to ${this.o.green} (${Object.keys(before).join(', ')})`, data: saved };
  }

  async verify(point: RoutingPoint, ctx: RoutingContext): Promise<string> {
    const weight = weightAt(point, this.o.weights);
    const text = splitConfig(this.o, this.name, weight);
    for (const p of this.places) {
      if ((await this.read(p, ctx)) !== text) throw new ProviderError(`${this.where(p)}: the file does not hold the entry graywave wrote (${weight}% GREEN)`);
    }
    if (!this.o.probe) return `file holds ${weight}% GREEN`;
    const { url, green, requests } = this.o.probe;
    this.probeTls ??= { settings: resolveTls(this.o.probe.tls, ctx.env) };
    const tls = this.probeTls.settings;
    const [cookieName, cookieValue] = this.o.cookie.split('=') as [string, string];
    const deadline = Date.now() + this.o.timeout;
    let last = '';
    for (;;) {
      const count = async (headers: Record<string, string>) => {
        let g = 0;
        for (let i = 0; i < requests; i++) {
          const res = await http(url, { headers, signal: ctx.signal, timeoutMs: this.o.timeout, tls });
          if (res.text.includes(green)) g++;
        }
        return g;
      };
      try {
        const pinned = await count({ cookie: `${cookieName}=${cookieValue}` });
        const other = weight <= 0 || weight >= 100 ? await count({}) : undefined;
        const ok = pinned === requests && (other === undefined || other === (weight >= 100 ? requests : 0));
        last = `with the cookie ${pinned}/${requests} answered GREEN${other === undefined ? '' : `, without ${other}/${requests}`}`;
        if (ok) return last;
      } catch (err) {
        last = (err as Error).message;
        // A certificate that is not trusted will not become trusted by waiting: fail at once.
        if (err instanceof ProviderError && !err.retryable) throw new ProviderError(`routing ${this.name}: requests through ${url} fail: ${last}`);
      }
      if (Date.now() > deadline || ctx.signal.aborted)
        throw new ProviderError(`routing ${this.name}: requests through ${url} do not follow the entry (${weight}% GREEN): ${last}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async close(): Promise<void> {
    await this.probeTls?.settings?.close();
  }

  async undo(data: unknown, ctx: RoutingContext): Promise<void> {
    if (!isSaved(data)) throw new ProviderError(`routing ${this.name}: the journal entry of the change is not readable`, false);
    const errors: string[] = [];
    for (const p of this.places.filter((pl) => pl.label in data.before)) {
      try {
        await serialize(`nginx\0${p.label}\0${this.file}`, async () => {
          const prev = data.before[p.label] ?? null;
          if ((await this.read(p, ctx)) === prev) return;
          try {
            await this.write(p, ctx, prev, prev === null ? 'removing the entry' : 'putting the previous entry back');
          } catch (err) {
            if (prev !== null) throw err;
            // The site config refers to the variable: without the file it fails `test`. Leave every request on BLUE.
            await this.write(p, ctx, splitConfig({ ...this.o, green: this.o.blue }, this.name, 0), 'sending every request to BLUE');
            ctx.log(`${this.where(p)}: the site config needs the file; left it sending every request to ${this.o.blue}`);
          }
        });
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    if (errors.length) throw new ProviderError(errors.join('\n'));
  }
}

/** For the reference (graywave explain, docs/reference.md). */
export const nginxSplitDoc: import('../reference/doc.js').TypeDoc = {
  options: {
    file: 'The file graywave owns and rewrites (it defines the variable); the site config includes it.',
    blue: 'Name of the upstream of the BLUE hosts (defined in the site config).',
    green: 'Name of the upstream of the GREEN hosts.',
    cookie: 'Cookie NAME=VALUE that pins a request to GREEN.',
    header: "Header that pins a request to GREEN when it carries the cookie's value, e.g. x-gray-group: GREEN.",
    weights: "% of the other requests sent to GREEN after wave 1, 2, … (default: GREEN's share of the hosts).",
    variable: 'nginx variable the file sets to the chosen upstream; the site config proxies to http://$<variable>.',
    splitOn: 'nginx variable the weighted split hashes (split_clients), e.g. $request_id or $remote_addr for sticky clients.',
    test: 'Command that checks the configuration after the file is written (the previous file is put back when it fails).',
    reload: 'Command that makes nginx load it.',
    probe: 'Optional read-back through nginx: requests to url until they see the new state.',
    'probe.url': "The gray entry's URL.",
    'probe.green': 'Text in a response body that shows it came from GREEN (e.g. the new version).',
    'probe.requests': 'Requests per check.',
    timeout: 'Limit for each command, and for the probe to see the new state.',
  },
  summary:
    'The gray entry in nginx: requests pinned by the cookie (gray=GREEN) or the x-gray-group header always go to the `green` upstream; of the rest, `weights[i]`% after wave i (split_clients), written to an included `file`, tested, reloaded, read back through `probe`.',
  checkedAgainst: 'real nginx 1.22 (Debian)',
  example:
    'name: gray-entry\ntype: nginx-split\nat: [local]\nfile: /etc/nginx/conf.d/order-split.conf\nblue: order_blue\ngreen: order_green\nweights: [5, 25, 50, 100]',
};
