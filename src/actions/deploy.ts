import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { basename, isAbsolute, resolve } from 'node:path';
import { quote } from 'shell-quote';
import { z } from 'zod';
import { ProviderError } from '../errors.js';
import { duration } from '../util/duration.js';
import type { Action, StepContext } from './types.js';

const healthy = z.union([
  z.object({ http: z.string().min(1), timeout: duration.default('60s'), status: z.number().int().min(100).max(599).optional() }).strict(),
  z.object({ command: z.string().min(1), timeout: duration.default('60s') }).strict(),
]);

const params = z
  .object({
    /** Local file, relative to the playbook; templates allowed ({{version}}). */
    artifact: z.string().min(1),
    /** Absolute directory on the host: releases/<release>/ and the `current` symlink live there. */
    to: z
      .string()
      .min(1)
      .refine((p) => p.startsWith('/') || p.startsWith('{{'), 'must be an absolute path on the host'),
    /** Name of the release directory (default: the playbook's version). */
    release: z.string().min(1).optional(),
    keep: z.number().int().min(1).default(5),
    /** Shell command that (re)starts the app; {{group}} is the release group. Run again on undo. */
    start: z.string().min(1).optional(),
    healthy: healthy.optional(),
  })
  .strict();

export type DeployParams = z.output<typeof params>;

/** What undo needs: which release went live and what `current` pointed to before (null: nothing). */
export interface DeploySaved {
  to: string;
  release: string;
  previous: string | null;
  sha256: string;
}

const q = (s: string) => quote([s]);
const HEALTH_EVERY_MS = 1000;

/**
 * The artifact's checksum, computed once per file version and process: every host of a release uploads the same
 * artifact, and hashing 5 MB forty times would cost more CPU than the whole orchestration.
 */
const shaCache = new Map<string, Promise<string>>();
function sha256File(path: string): Promise<string> {
  let key: string;
  try {
    const st = statSync(path);
    key = `${path}:${st.size}:${st.mtimeMs}:${st.ino}`;
  } catch (err) {
    return Promise.reject(err);
  }
  let p = shaCache.get(key);
  if (!p) {
    p = hashFile(path);
    shaCache.set(key, p);
    p.catch(() => shaCache.delete(key));
  }
  return p;
}

function hashFile(path: string): Promise<string> {
  return new Promise((res, rej) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('error', rej)
      .on('data', (c) => h.update(c))
      .on('end', () => res(h.digest('hex')));
  });
}

const isArchive = (name: string) => /\.(tar\.gz|tgz|tar\.xz|txz|tar\.bz2|tbz2?|tar|zip)$/i.test(name);

/** Unpack command for the artifact kind; a file that is no archive is copied into the release as is. */
function unpack(file: string, name: string, into: string): string {
  if (/\.(tar\.gz|tgz)$/i.test(name)) return `tar -xzf ${q(file)} -C ${q(into)}`;
  if (/\.(tar\.xz|txz)$/i.test(name)) return `tar -xJf ${q(file)} -C ${q(into)}`;
  if (/\.(tar\.bz2|tbz2?)$/i.test(name)) return `tar -xjf ${q(file)} -C ${q(into)}`;
  if (/\.tar$/i.test(name)) return `tar -xf ${q(file)} -C ${q(into)}`;
  if (/\.zip$/i.test(name)) return `unzip -q -o ${q(file)} -d ${q(into)}`;
  return `cp ${q(file)} ${q(`${into}/${name}`)}`;
}

async function must(ctx: StepContext, what: string, command: string, timeoutMs?: number): Promise<string> {
  const r = await ctx.sh(command, timeoutMs ? { timeoutMs } : undefined);
  if (r.code === 0) return r.stdout;
  const why = r.timedOut ? 'timed out' : r.code === null ? `killed by ${r.signal}` : `exit ${r.code}`;
  const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-5).join('\n');
  throw new ProviderError(`deploy: ${what} failed on ${ctx.host.name} (${why})${tail ? `:\n${tail}` : ''}`);
}

function paths(ctx: StepContext, p: DeployParams) {
  const to = ctx.render(p.to).replace(/\/+$/, '');
  if (!to.startsWith('/')) throw new ProviderError(`deploy: to: ${to} is not an absolute path`, false);
  const name = ctx.render(p.release ?? '{{version}}');
  if (!name || name.includes('/') || name.startsWith('.'))
    throw new ProviderError(`deploy: release name ${JSON.stringify(name)} cannot be a directory name`, false);
  return { to, release: `${to}/releases/${name}`, current: `${to}/current` };
}

/** Points `current` at `target` atomically: a symlink under a temp name, then rename(2) over the old one. */
function switchCommand(to: string, target: string): string {
  const tmp = `${q(`${to}/.current.graywave-`)}$$`;
  return `ln -sfn ${q(target)} ${tmp} && mv -T ${tmp} ${q(`${to}/current`)}`;
}

/** Template values that differ from the step's own (undo: the version that is live again). */
type Over = { version?: string } | undefined;

async function waitHealthy(ctx: StepContext, p: DeployParams, over?: Over): Promise<void> {
  const h = p.healthy;
  if (!h) return;
  const deadline = Date.now() + h.timeout;
  let probe: string;
  let what: string;
  if ('http' in h) {
    const url = ctx.render(h.http, over);
    what = `GET ${url}`;
    // Asked from the host itself: `127.0.0.1` in the URL means the host, not the machine running graywave.
    probe =
      `if command -v curl >/dev/null; then code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 ${q(url)}); ` +
      `else code=$(wget -q -S -O /dev/null -T 5 ${q(url)} 2>&1 | awk '/HTTP\\//{c=$2} END{print c}'); fi; echo "$code"; ` +
      (h.status ? `[ "$code" = ${h.status} ]` : `case "$code" in 2??) true;; *) false;; esac`);
  } else {
    what = ctx.renderShell(h.command, over);
    probe = what;
  }
  let last = '';
  for (;;) {
    if (ctx.signal.aborted) throw new ProviderError(`deploy: aborted while waiting for ${what}`, false);
    const r = await ctx.sh(probe, { timeoutMs: Math.max(1000, Math.min(10_000, deadline - Date.now())) });
    if (r.code === 0) return;
    last =
      'http' in h ? `HTTP ${r.stdout.trim() || 'no answer'}` : `exit ${r.code ?? r.signal}${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').pop()}` : ''}`;
    ctx.progress(`not healthy yet (${last})`);
    const wait = Math.min(HEALTH_EVERY_MS, deadline - Date.now());
    if (wait <= 0) break;
    await new Promise((res) => setTimeout(res, wait));
  }
  throw new ProviderError(`deploy: ${ctx.host.name} not healthy after ${h.timeout} ms (${what}: ${last})`);
}

async function start(ctx: StepContext, p: DeployParams, over?: Over): Promise<void> {
  if (p.start) await must(ctx, `start (${ctx.renderShell(p.start, over)})`, ctx.renderShell(p.start, over));
  await waitHealthy(ctx, p, over);
}

/**
 * `- deploy: { artifact, to, keep, start, healthy }` — Capistrano-style releases: upload by the transport
 * (skipped when the same checksum is already on the host), unpack into releases/<version>/, switch `current`
 * atomically, start, wait until healthy, prune old releases. Undo points `current` back and starts again.
 * Everything goes through ctx.sh / ctx.transport.upload, so it works with any transport (and sudo).
 */
export const deployAction: Action<DeployParams> = {
  doc: {
    options: {
      deploy: 'What to upload, where, how to start it and how to know it is up.',
      'deploy.artifact':
        'Local file (relative to the playbook) to upload, e.g. ./build/order-{{version}}.tar.gz; an archive (.tar.gz, .tgz, .tar.xz, .tar.bz2, .tar, .zip) is unpacked, another file copied as is.',
      'deploy.to': 'Absolute directory on the host: releases/<release>/ and the current symlink live there.',
      'deploy.release': "Name of the release directory (default: the playbook's version).",
      'deploy.keep': 'How many release directories to keep (older ones are removed).',
      'deploy.start': 'Shell command that (re)starts the app from current; {{group}} is the release group. Run again on undo.',
      'deploy.healthy':
        'Wait until healthy: { http: URL, status, timeout } (asked on the host with curl or wget; default any 2xx) or { command, timeout } (exit 0).',
    },
    summary:
      'Capistrano-style release: upload the artifact (skipped when the checksum matches), unpack into <to>/releases/<version>, switch `current`, start, wait until healthy, keep the newest `keep`. Undo points `current` back and starts it again.',
    checkedAgainst: 'bash 5.2 locally, and SFTP or an exec channel over real OpenSSH 9.2 (Debian 12)',
    example:
      '- deploy: { artifact: "./build/order-{{version}}.tar.gz", to: /opt/order, keep: 5, start: "systemctl restart order", healthy: { http: "http://127.0.0.1:8080/health" } }',
  },
  key: 'deploy',
  params,
  defaultName: () => 'deploy',
  describe: (p, ctx) =>
    `upload ${ctx.render(p.artifact)} to ${ctx.render(p.to)}/releases/${ctx.render(p.release ?? '{{version}}')}, switch current` +
    (p.start ? `, start: ${ctx.renderShell(p.start)}` : '') +
    (p.healthy ? `, until healthy (${'http' in p.healthy ? ctx.render(p.healthy.http) : ctx.renderShell(p.healthy.command)})` : ''),

  async do(ctx, p): Promise<DeploySaved> {
    const { to, release, current } = paths(ctx, p);
    const rendered = ctx.render(p.artifact);
    const local = isAbsolute(rendered) ? rendered : resolve(ctx.playbook.dir, rendered);
    const sha = await sha256File(local).catch(() => {
      throw new ProviderError(`deploy: artifact ${local} cannot be read (built yet?)`, false);
    });
    const name = basename(local);
    const marker = `${release}/.graywave-sha256`;

    // A per-host upload name: hosts may share a filesystem (and /tmp) in tests and on NFS.
    const safeHost = ctx.host.name.replace(/[^\w.-]/g, '_');
    const upload = `/tmp/graywave-${safeHost}-${sha.slice(0, 16)}-${name}`;
    const prevFile = `${release}/.graywave-previous`;
    // One round trip reads the host's state: the release's checksum marker, an earlier upload's checksum (hashed
    // only when the release is not there yet), what `current` points at, and the recorded previous release. Files
    // are read with the shell's own `read` and tested before anything runs: each process costs the host a fork.
    const probe = await must(
      ctx,
      'reading the release state',
      `m= u= c= v=; [ ! -f ${q(marker)} ] || IFS= read -r m < ${q(marker)}; ` +
        `[ "$m" = ${sha} ] || [ ! -f ${q(upload)} ] || { u=$(sha256sum ${q(upload)}); u=\${u%% *}; }; ` +
        `[ ! -L ${q(current)} ] || c=$(readlink ${q(current)}); [ ! -f ${q(prevFile)} ] || IFS= read -r v < ${q(prevFile)}; ` +
        `printf '%s\\n' "$m" "$u" "$c" "$v"`,
    );
    const [have = '', uploaded = '', now = '', recorded = ''] = probe.split('\n');

    // What `current` pointed to before this release went live. Kept in the release dir so that a repeated
    // do (resume, retry) still knows the real previous release after the switch has happened.
    const previous: string | null = now === release ? recorded || null : now || null;
    const steps: string[] = [];
    if (have === sha) {
      ctx.log(`deploy: ${release} already holds ${name} (sha256 ${sha.slice(0, 12)}): upload skipped`);
    } else {
      if (uploaded === sha) {
        ctx.log(`deploy: ${upload} already uploaded (sha256 matches): upload skipped`);
      } else {
        ctx.log(`deploy: uploading ${name} (sha256 ${sha.slice(0, 12)}) to ${ctx.host.name}:${upload}`);
        await ctx.transport.upload(ctx.host, local, upload, { signal: ctx.signal, sha256: sha });
      }
      const tmp = `${release}.graywave-tmp`;
      // Directories are removed only when they exist, and a plain file is moved, not copied: fewer processes.
      steps.push(
        `got=$(sha256sum ${q(upload)}); got=\${got%% *}; [ "$got" = ${sha} ] || { rm -f ${q(upload)}; echo "checksum $got" >&2; exit 97; }`,
        `{ [ ! -e ${q(tmp)} ] || rm -rf ${q(tmp)}; }`,
        `mkdir -p ${q(tmp)}`,
        ...(isArchive(name) ? [unpack(upload, name, tmp), `rm -f ${q(upload)}`] : [`mv -f ${q(upload)} ${q(`${tmp}/${name}`)}`]),
        `printf '%s\\n' ${sha} > ${q(`${tmp}/.graywave-sha256`)}`,
        `{ [ ! -e ${q(release)} ] || rm -rf ${q(release)}; }`,
        `mv -T ${q(tmp)} ${q(release)}`,
      );
    }
    if (now !== release) {
      steps.push(`printf '%s\\n' ${q(now)} > ${q(prevFile)}`, switchCommand(to, release));
    } else if (have !== sha && previous) {
      // Same version re-unpacked over the live one (a new artifact): the record went with the old dir.
      steps.push(`printf '%s\\n' ${q(previous)} > ${q(prevFile)}`);
    }
    // Prune: keep the newest `keep` releases, never the live one nor the one undo would go back to.
    const keepSet = [release, previous].filter((x): x is string => !!x).map((x) => basename(x));
    // The listing pipeline runs only when there are more entries than `keep` (counted by a glob, no process).
    const releases = q(`${to}/releases`);
    steps.push(
      `{ set -- ${releases}/*; [ $# -le ${p.keep} ] || { cd ${releases} && ls -1t | grep -v '\\.graywave-tmp$' | tail -n +${p.keep + 1} | grep -vxF -e ${keepSet.map(q).join(' -e ')} | while IFS= read -r d; do rm -rf -- "$d"; done; }; true; }`,
    );
    // Unpack, switch and prune in one round trip: each remote command costs a channel, a shell and a process.
    const r = await ctx.sh(steps.join(' && '));
    if (r.code === 97) {
      // The corrupt upload was removed: a retry uploads afresh.
      const got = /checksum (\w*)/.exec(r.stderr)?.[1] ?? '';
      throw new ProviderError(
        `deploy: checksum mismatch on ${ctx.host.name} after upload of ${name} (local ${sha.slice(0, 12)}, host ${got.slice(0, 12) || 'none'})`,
      );
    }
    if (r.code !== 0) {
      const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-5).join('\n');
      throw new ProviderError(
        `deploy: installing ${name} as ${release} and switching ${current} failed on ${ctx.host.name} (${r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`})${tail ? `:\n${tail}` : ''}`,
      );
    }
    if (now !== release) ctx.log(`deploy: ${current} -> ${release} (was ${previous ?? 'nothing'})`);

    await start(ctx, p);
    return { to, release, previous, sha256: sha };
  },

  // A deploy that failed after switching `current` (an unhealthy start) must be switched back too.
  undoAfterFailure: true,

  async undo(ctx, p, saved) {
    let s = saved as DeploySaved | undefined;
    if (!s || !s.to) {
      // The step failed before it recorded anything: read what it did from the host itself.
      const { to, release, current } = paths(ctx, p);
      const out = await must(
        ctx,
        'reading the release state',
        `readlink ${q(current)} 2>/dev/null; echo; cat ${q(`${release}/.graywave-previous`)} 2>/dev/null; true`,
      );
      const [now = '', recorded = ''] = out.split('\n');
      if (now.trim() !== release) {
        ctx.log(`deploy undo: ${current} does not point at ${release}: nothing to undo`);
        return;
      }
      s = { to, release, previous: recorded.trim() || null, sha256: '' };
    }
    if (!s.previous) {
      // First release on this host: there is nothing to go back to; take the new one out of `current`.
      await must(ctx, `removing ${s.to}/current`, `rm -f ${q(`${s.to}/current`)}`);
      ctx.log(`deploy undo: ${s.to}/current removed (no previous release)`);
      return;
    }
    await must(ctx, `previous release ${s.previous} is gone`, `test -d ${q(s.previous)}`);
    await must(ctx, `switching ${s.to}/current back to ${s.previous}`, switchCommand(s.to, s.previous));
    ctx.log(`deploy undo: ${s.to}/current -> ${s.previous}`);
    // `start` and `healthy` run for the release that is live again: with the default release names (the version),
    // {{version}} in them is the previous release's, so that "restart app@{{version}}" restarts the right one.
    await start(ctx, p, p.release === undefined ? { version: basename(s.previous) } : undefined);
  },
};
