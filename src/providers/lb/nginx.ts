/**
 * `type: nginx` — drain a host from an open-source nginx upstream by marking its `server` line `down`.
 *
 *   web:
 *     type: nginx
 *     at: [local]                          # or addresses reached with the playbook's transport; all are changed, or none
 *     config: /etc/nginx/conf.d/order.conf # the file holding the upstream (not a file it includes)
 *     upstream: order_backend
 *     server: "{{host.address}}:8080"      # as written in the upstream
 *     test: "nginx -t"                     # default; add -p/-c for a non-default prefix
 *     reload: "nginx -s reload"            # default
 *     checkWorkers: true                   # default: confirm each reload through nginx's worker processes (ps)
 *     monitor: { provider: prom, query: 'sum(rate(http_requests_total{instance="{{host.address}}:8080"}[1m]))' }  # optional
 *
 * nginx rejects `weight=0`, so drain adds `down`: validate the current file with `test`, write the edit atomically
 * (temp file + mv, next to the real file when `config` is a symlink), keeping `.NAME.graywave-bak` beside it; run
 * `test`, then `reload`. When either fails the backup is put back and the step fails with nginx's own message, so a
 * config that fails `test` is never left behind. Dot-names keep backup and temp file out of `include dir/*` globs.
 * Restore removes the `down` that drain added (the line comes back byte-for-byte) and nothing else: a line that was
 * already `down` before the drain stays down.
 *
 * "Running config": open-source nginx cannot report the configuration it runs (`nginx -T` dumps the files on disk,
 * the same thing we read), and `nginx -s reload` exits 0 as soon as the signal is sent. So after a reload the
 * provider waits until an nginx master has replaced all its workers (`ps`): that happens only once the master has
 * loaded the new file; if it does not happen within `timeout`, the backup is put back and the step fails. isDrained
 * then reads the file (which changes only through this path) and waits until no old worker "is shutting down"
 * (those still serve requests under the previous config). With `checkWorkers: false` (nginx's processes not
 * visible from `at`, e.g. in a container) both waits are skipped and the file alone is trusted. nginx has no
 * per-server connection counter: give `monitor` to also wait for the host's traffic to read 0.
 *
 * Switchover (BLUE → GREEN) needs no provider: a `run:` step on the machine running nginx points the site at the
 * GREEN upstream the same way (edit, test, put back on failure, reload):
 *
 *   switchover:
 *     steps:
 *       - name: site-to-green
 *         run: >-
 *           f=/etc/nginx/conf.d/order.conf; cp -p $f /tmp/order.conf.blue &&
 *           sed -i 's#proxy_pass http://order_backend;#proxy_pass http://order_backend_green;#' $f &&
 *           { nginx -t && nginx -s reload || { cp -p /tmp/order.conf.blue $f; exit 1; }; }
 *         undo: "cp -p /tmp/order.conf.blue /etc/nginx/conf.d/order.conf && nginx -t && nginx -s reload"
 */
import { createHash } from 'node:crypto';
import { dirname, isAbsolute, resolve } from 'node:path';
import { quote } from 'shell-quote';
import { z } from 'zod';
import { ProviderError } from '../../errors.js';
import { duration } from '../../util/duration.js';
import type { Check, Monitor, Provider, ProviderContext, ProviderEnv, ProviderType } from '../types.js';
import { allOrNone, atOption, places, run, serialize, why, type Place } from './at.js';
import { findServer, NginxConfigError, serverWeight, setServerDown, setServerWeight } from './nginx-config.js';

const options = z
  .object({
    at: atOption,
    config: z.string().min(1),
    upstream: z.string().min(1),
    server: z.string().min(1),
    test: z.string().min(1).default('nginx -t'),
    reload: z.string().min(1).default('nginx -s reload'),
    /** Watch nginx's worker processes with `ps` at each place (see the top of this file); off when they are not visible there. */
    checkWorkers: z.boolean().default(true),
    monitor: z
      .object({ provider: z.string().min(1), query: z.string().min(1) })
      .strict()
      .optional(),
    /** Limit for each command (cat, test, reload, ps). */
    timeout: duration.default('30s'),
  })
  .strict();
type Options = z.infer<typeof options>;

/** What restore needs: the places where this drain added `down` (and the line it was added to). */
interface Saved {
  config: string;
  upstream: string;
  server: string;
  added: string[];
  /** The `weight=` each place's line had when drained (null: none written): warm-up ramps towards it, restore puts it back. */
  weights?: Record<string, number | null>;
}

function isSaved(v: unknown): v is Saved {
  const s = v as Saved;
  return !!s && typeof s === 'object' && typeof s.server === 'string' && Array.isArray(s.added) && s.added.every((a) => typeof a === 'string');
}

/** Shell snippet setting $c (the real file behind `config`), $b (backup) and $t (temp file) next to it. */
function pathsSh(config: string): string {
  return `c=$(readlink -f -- ${quote([config])}) && d=$(dirname -- "$c") && n=$(basename -- "$c") && b="$d/.$n.graywave-bak" && t="$d/.$n.graywave-tmp"`;
}

class NginxProvider implements Provider {
  private readonly places: Place[];
  private readonly config: string;

  constructor(
    private readonly o: Options,
    env: ProviderEnv,
  ) {
    this.places = places(o.at, env);
    if (!isAbsolute(o.config) && o.at.some((a) => a !== 'local')) {
      throw new Error(`config ${o.config} must be an absolute path when nginx runs on other machines (at: ${o.at.join(', ')})`);
    }
    this.config = isAbsolute(o.config) ? o.config : resolve(env.dir, o.config);
  }

  private where(p: Place, ctx: ProviderContext): string {
    return `nginx on ${p.label} (host ${ctx.host.name}, ${this.config})`;
  }

  private exec(p: Place, ctx: ProviderContext, command: string, input?: string) {
    return run(p, command, { timeoutMs: this.o.timeout, signal: ctx.signal, input });
  }

  /** The whole file, refusing a partial read (transports keep a bounded amount of output) or undecodable bytes. */
  private async read(p: Place, ctx: ProviderContext): Promise<string> {
    const q = quote([this.config]);
    // Size last: a transport that bounds output keeps the tail, so a cut-off read is still detected.
    const res = await this.exec(p, ctx, `cat -- ${q} && printf '\\n%s\\n' "$(wc -c < ${q})"`);
    if (res.code !== 0) throw new ProviderError(`${this.where(p, ctx)}: cannot read the config (${why(res)}); check \`config\` and the permissions`, false);
    const body = res.stdout.replace(/\n$/, '');
    const nl = body.lastIndexOf('\n');
    const size = Number(body.slice(nl + 1).trim());
    const text = body.slice(0, Math.max(nl, 0));
    if (text.includes('\uFFFD'))
      throw new ProviderError(`${this.where(p, ctx)}: the config is not valid UTF-8; graywave edits it only when it can write it back byte-for-byte`, false);
    if (Buffer.byteLength(text) !== size) {
      throw new ProviderError(
        `${this.where(p, ctx)}: read ${Buffer.byteLength(text)} of ${size} bytes of the config; keep the upstream in a smaller file of its own (include it from the main config)`,
        false,
      );
    }
    return text;
  }

  private mustFind<T>(p: Place, ctx: ProviderContext, f: () => T): T {
    try {
      return f();
    } catch (err) {
      if (err instanceof NginxConfigError) throw new ProviderError(`${this.where(p, ctx)}: ${err.message}`, false);
      throw err;
    }
  }

  /** Mark the line down / not down at one place. Returns whether the file changed. Serialized per file. */
  private edit(p: Place, ctx: ProviderContext, server: string, down: boolean, weight?: number | null): Promise<boolean> {
    return serialize(`nginx\0${p.label}\0${this.config}`, async () => {
      const original = await this.read(p, ctx);
      let { text, changed } = this.mustFind(p, ctx, () => setServerDown(original, this.o.upstream, server, down));
      if (weight !== undefined) {
        const w = this.mustFind(p, ctx, () => setServerWeight(text, this.o.upstream, server, weight));
        text = w.text;
        changed ||= w.changed;
      }
      const what = `${down ? 'marking' : 'unmarking'} ${server} down${weight !== undefined ? ` (weight ${weight ?? 'as written before'})` : ''} in upstream ${this.o.upstream}`;
      if (!changed) {
        ctx.log(
          `${this.where(p, ctx)}: ${server} is already ${down ? '' : 'not '}down${weight !== undefined ? ` with weight ${weight ?? 'as before'}` : ''} in upstream ${this.o.upstream}`,
        );
        return false;
      }
      // Validate first: if the config already fails, editing and reloading it would only hide whose change broke it.
      const before = await this.exec(p, ctx, this.o.test);
      if (before.code !== 0) {
        throw new ProviderError(
          `${this.where(p, ctx)}: \`${this.o.test}\` fails before graywave changed anything (${why(before)}); fix the config first`,
          false,
        );
      }
      const hash = createHash('sha256').update(original).digest('hex');
      const write = await this.exec(
        p,
        ctx,
        `set -e; ${pathsSh(this.config)}; ` +
          `[ "$(sha256sum < "$c" | cut -d' ' -f1)" = ${hash} ] || { echo "the file changed while graywave was editing it" >&2; exit 3; }; ` +
          `cp -p -- "$c" "$b"; cp -p -- "$c" "$t"; cat > "$t"; mv -f -- "$t" "$c"`,
        text,
      );
      if (write.code !== 0) throw new ProviderError(`${this.where(p, ctx)}: could not write the config while ${what} (${why(write)})`, write.code === 3);
      const test = await this.exec(p, ctx, this.o.test);
      if (test.code !== 0) {
        const back = await this.putBack(p, ctx);
        throw new ProviderError(`${this.where(p, ctx)}: \`${this.o.test}\` failed after ${what} (${why(test)}); ${back}`, false);
      }
      let workers: Map<string, Set<string>> | undefined;
      if (this.o.checkWorkers) {
        const w = await this.workers(p, ctx);
        if (typeof w === 'string' || w.size === 0) {
          const back = await this.putBack(p, ctx);
          const seen = typeof w === 'string' ? w : 'no nginx master process with workers is running there';
          throw new ProviderError(
            `${this.where(p, ctx)}: ${seen}; ${back}; start nginx, or set checkWorkers: false when its processes are not visible from ${p.label}`,
          );
        }
        workers = w;
      }
      const reload = await this.exec(p, ctx, this.o.reload);
      if (reload.code !== 0) {
        const back = await this.putBack(p, ctx);
        throw new ProviderError(`${this.where(p, ctx)}: \`${this.o.reload}\` failed after ${what} (${why(reload)}); ${back}; is nginx running?`);
      }
      if (workers && !(await this.reloaded(p, ctx, workers))) {
        const back = await this.putBack(p, ctx);
        throw new ProviderError(
          `${this.where(p, ctx)}: after \`${this.o.reload}\` no nginx master replaced its workers within ${this.o.timeout} ms, so the new config is not running; ${back}; see nginx's error log`,
        );
      }
      ctx.log(`${this.where(p, ctx)}: ${what}: test passed, reloaded`);
      return true;
    });
  }

  /**
   * Active (not shutting down) worker PIDs per master PID, from `ps`; a string says why it could not be read.
   * `ps` rather than the pid file: the pid file's path is in the nginx config, which may differ per place.
   */
  private async workers(p: Place, ctx: ProviderContext): Promise<Map<string, Set<string>> | string> {
    const res = await this.exec(p, ctx, 'ps -eo pid=,ppid=,args=');
    if (res.code !== 0) return `cannot list processes (${why(res)})`;
    const rows = res.stdout
      .split('\n')
      .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ pid: m[1]!, ppid: m[2]!, args: m[3]!.trim() }));
    const out = new Map<string, Set<string>>();
    const masters = rows.filter((r) => r.args.startsWith('nginx: master process'));
    // Several nginx on one host: when some master names this config or its directory on its command line (`-c`,
    // `-p`), only those count; otherwise another instance reloading at the same moment would look like ours.
    const names = [this.config, dirname(this.config)];
    const named = masters.filter((r) => names.some((n) => ` ${r.args} `.includes(` ${n} `)));
    for (const r of named.length ? named : masters) out.set(r.pid, new Set());
    for (const r of rows) {
      if (r.args.startsWith('nginx: worker process') && !r.args.includes('is shutting down')) out.get(r.ppid)?.add(r.pid);
    }
    for (const [m, w] of out) if (w.size === 0) out.delete(m);
    return out;
  }

  /** True once some master that had workers before the reload has none of those workers active any more. */
  private async reloaded(p: Place, ctx: ProviderContext, before: Map<string, Set<string>>): Promise<boolean> {
    const deadline = Date.now() + this.o.timeout;
    for (;;) {
      const now = await this.workers(p, ctx);
      if (typeof now !== 'string') {
        for (const [master, old] of before) {
          const active = now.get(master) ?? new Set();
          if ([...old].every((pid) => !active.has(pid)) && active.size > 0) return true;
        }
      }
      if (Date.now() > deadline || ctx.signal.aborted) return false;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  private async putBack(p: Place, ctx: ProviderContext): Promise<string> {
    const res = await this.exec(p, ctx, `set -e; ${pathsSh(this.config)}; cp -p -- "$b" "$t"; mv -f -- "$t" "$c"`);
    return res.code === 0
      ? 'the previous file was put back'
      : `putting the previous file back FAILED (${why(res)}): restore it from .<name>.graywave-bak next to it`;
  }

  async drain(ctx: ProviderContext): Promise<Saved> {
    const server = ctx.render(this.o.server);
    // A drain interrupted after its edit: the line is down now, but it was this drain that put it there.
    const earlier = isSaved(ctx.previous) && ctx.previous.server === server ? ctx.previous.added : [];
    const weights: Record<string, number | null> =
      isSaved(ctx.previous) && ctx.previous.server === server && ctx.previous.weights ? { ...ctx.previous.weights } : {};
    for (const p of this.places) {
      if (p.label in weights) continue;
      try {
        const text = await this.read(p, ctx);
        weights[p.label] = serverWeight(findServer(text, this.o.upstream, server));
      } catch {
        // The edit below reports it (and puts back the places already changed).
      }
    }
    const done = await allOrNone(
      this.places,
      (p) => this.edit(p, ctx, server, true),
      async (p, changed) => {
        if (changed) await this.edit(p, ctx, server, false);
      },
    );
    const added = done.filter((d) => d.result || earlier.includes(d.place.label)).map((d) => d.place.label);
    return { config: this.config, upstream: this.o.upstream, server, added, weights };
  }

  async isDrained(ctx: ProviderContext): Promise<Check> {
    const server = ctx.render(this.o.server);
    for (const p of this.places) {
      let line;
      try {
        const text = await this.read(p, ctx);
        line = this.mustFind(p, ctx, () => findServer(text, this.o.upstream, server));
      } catch (err) {
        return { done: false, observed: (err as Error).message };
      }
      if (!line.down) return { done: false, observed: `${server} is not down in upstream ${this.o.upstream} on ${p.label} (line ${line.line})` };
      if (this.o.checkWorkers) {
        const ps = await this.exec(p, ctx, 'ps -eo args=');
        if (ps.code !== 0) return { done: false, observed: `cannot list processes on ${p.label} to look for old nginx workers (${why(ps)})` };
        const old = ps.stdout.split('\n').filter((l) => l.startsWith('nginx: worker process is shutting down')).length;
        if (old > 0) return { done: false, observed: `${old} old nginx worker(s) on ${p.label} still finishing requests` };
      }
    }
    if (this.o.monitor) {
      // The engine's step context can reach monitors; a bare ProviderContext cannot, and then we cannot know.
      const m = ctx as ProviderContext & { monitor?: (name: string) => Monitor };
      if (typeof m.monitor !== 'function') return { done: false, observed: `monitor ${this.o.monitor.provider} is not reachable from this step` };
      try {
        const v = await m.monitor(this.o.monitor.provider).value(ctx, ctx.render(this.o.monitor.query));
        if (v !== 0) return { done: false, observed: `${server} still has traffic: ${v} (monitor ${this.o.monitor.provider})` };
      } catch (err) {
        return { done: false, observed: `monitor ${this.o.monitor.provider}: ${(err as Error).message}` };
      }
    }
    return { done: true, observed: `${server} down in upstream ${this.o.upstream} on ${this.o.at.join(', ')}` };
  }

  async restore(ctx: ProviderContext, saved: unknown): Promise<void> {
    if (!isSaved(saved)) throw new ProviderError(`nginx restore for host ${ctx.host.name}: the journal entry of the drain is not readable`, false);
    const errors: string[] = [];
    // Every place is tried even when one fails: leave as few hosts out as possible, then fail loudly.
    for (const p of this.places.filter((pl) => saved.added.includes(pl.label))) {
      try {
        // The weight as written at drain time (a warm-up changed it); older journals did not record it: left alone.
        await this.edit(p, ctx, saved.server, false, saved.weights && p.label in saved.weights ? saved.weights[p.label] : undefined);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    if (errors.length > 0) throw new ProviderError(errors.join('\n'));
  }

  /** Warm-up: at each place drain changed, the line not down with `weight=` at `percent` of its drain-time weight (at least 1). */
  async setWeight(ctx: ProviderContext, saved: unknown, percent: number): Promise<void> {
    if (!isSaved(saved)) throw new ProviderError(`nginx warm-up for host ${ctx.host.name}: the journal entry of the drain is not readable`, false);
    for (const p of this.places.filter((pl) => saved.added.includes(pl.label))) {
      if (!saved.weights || !(p.label in saved.weights))
        throw new ProviderError(`${this.where(p, ctx)}: the drain did not record the line's weight (an older journal): cannot warm it up`, false);
      const full = saved.weights[p.label] ?? 1;
      await this.edit(p, ctx, saved.server, false, Math.max(1, Math.round((full * percent) / 100)));
    }
  }

  /**
   * Serving again: at each place drain changed, the line is not down and has its drain-time weight, the running
   * nginx has no old workers left (checkWorkers), and with `monitor` the host's traffic reads above 0.
   */
  async isRestored(ctx: ProviderContext, saved: unknown): Promise<Check> {
    if (!isSaved(saved)) return { done: false, observed: 'the journal entry of the drain is not readable' };
    for (const p of this.places.filter((pl) => saved.added.includes(pl.label))) {
      try {
        const text = await this.read(p, ctx);
        const line = this.mustFind(p, ctx, () => findServer(text, this.o.upstream, saved.server));
        if (line.down) return { done: false, observed: `${saved.server} is still down in upstream ${this.o.upstream} on ${p.label} (line ${line.line})` };
        const want = saved.weights?.[p.label];
        if (want !== undefined && serverWeight(line) !== want) {
          return {
            done: false,
            observed: `${saved.server} has weight ${serverWeight(line) ?? 1} in upstream ${this.o.upstream} on ${p.label} (want ${want ?? 1})`,
          };
        }
        if (this.o.checkWorkers) {
          const w = await this.workers(p, ctx);
          if (typeof w === 'string' || w.size === 0)
            return { done: false, observed: `${this.where(p, ctx)}: ${typeof w === 'string' ? w : 'no nginx master with workers is running'}` };
        }
      } catch (err) {
        return { done: false, observed: `state unknown: ${(err as Error).message}` };
      }
    }
    if (this.o.monitor) {
      const m = ctx as ProviderContext & { monitor?: (name: string) => Monitor };
      if (typeof m.monitor !== 'function') return { done: false, observed: `monitor ${this.o.monitor.provider} is not reachable from this step` };
      try {
        const v = await m.monitor(this.o.monitor.provider).value(ctx, ctx.render(this.o.monitor.query));
        if (!(v > 0)) return { done: false, observed: `${saved.server} receives no traffic yet: ${v} (monitor ${this.o.monitor.provider})` };
      } catch (err) {
        return { done: false, observed: `monitor ${this.o.monitor.provider}: ${(err as Error).message}` };
      }
    }
    return { done: true, observed: `${saved.server} up in upstream ${this.o.upstream} on ${saved.added.join(', ') || '(nothing changed by the drain)'}` };
  }

  async isRegistered(ctx: ProviderContext): Promise<Check> {
    const server = ctx.render(this.o.server);
    for (const p of this.places) {
      try {
        const text = await this.read(p, ctx);
        this.mustFind(p, ctx, () => findServer(text, this.o.upstream, server));
      } catch (err) {
        return { done: false, observed: (err as Error).message };
      }
    }
    return { done: true, observed: `server ${server} in upstream ${this.o.upstream} on ${this.o.at.join(', ')}` };
  }
}

export const nginxProvider: ProviderType<Options> = {
  type: 'nginx',
  role: 'drain',
  options,
  doc: {
    summary:
      "nginx upstreams: drain marks the host's `server` line in the upstream `down` in the config file, runs `nginx -t` and reloads (a backup is kept); restore takes the mark away.",
    checkedAgainst: 'real nginx 1.22 (Debian)',
    example: 'type: nginx\nat: [local]\nconfig: /etc/nginx/conf.d/order.conf\nupstream: order\nserver: "{{host.address}}:8080"',
    options: {
      test: 'Command that checks the edited configuration before a reload.',
      reload: 'Command that makes nginx load the configuration; graywave then waits for new workers.',
      checkWorkers:
        "Watch nginx's worker processes with ps: drained only when no old worker (which may still hold the old upstream) is left; turn off where they are not visible.",
      'monitor.provider': 'Name of a monitor under providers: (prometheus, metrics, http …).',
      'monitor.query': 'Its query for the host\'s traffic (a template), e.g. sum(rate(http_requests_total{instance="{{host.address}}:8080"}[1m])).',
      timeout: 'Limit for each command run (cat, test, reload, ps).',
      at: 'Where nginx runs: `local` or addresses reached through the transport.',
      config: 'The config file that holds the upstream.',
      upstream: 'Upstream block name.',
      server: "The host's server address in it (a template).",
      monitor: "Optional `{ provider, query }` read until the host's traffic through nginx is 0.",
    },
  },
  describe: (o, c) => ({
    drain: `at ${o.at.join(', ')}: ${o.config}: upstream ${o.upstream} server ${c.render(o.server)} down; ${o.test}; ${o.reload}`,
    check: `reads ${o.config} back${o.checkWorkers ? '; old workers gone' : ''}${o.monitor ? `; ${o.monitor.provider}: ${o.monitor.query} = 0` : ''}`,
    restore: `removes the down mark, ${o.test}, ${o.reload}`,
  }),
  create: (o, env) => new NginxProvider(o, env),
};
