import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { basename, isAbsolute, resolve } from 'node:path';
import { quote } from 'shell-quote';
import { z } from 'zod';
import { ProviderError } from '../errors.js';
import { duration } from '../util/duration.js';
import { sha256OfFile } from '../util/sha256.js';
import type { ExecResult, RemoteFiles } from '../transport/types.js';
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
    p = sha256OfFile(path);
    shaCache.set(key, p);
    p.catch(() => shaCache.delete(key));
  }
  return p;
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

/** Why a command failed and the end of what it said, for an error message. */
function failure(r: ExecResult): { why: string; tail: string } {
  const why = r.timedOut ? 'timed out' : r.code === null ? `killed by ${r.signal}` : `exit ${r.code}`;
  return { why, tail: (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-5).join('\n') };
}

function failed(ctx: StepContext, what: string, why: string, tail = ''): ProviderError {
  return new ProviderError(`deploy: ${what} failed on ${ctx.host.name} (${why})${tail ? `:\n${tail}` : ''}`);
}

async function must(ctx: StepContext, what: string, command: string, timeoutMs?: number): Promise<string> {
  const r = await ctx.sh(command, timeoutMs ? { timeoutMs } : undefined);
  if (r.code === 0) return r.stdout;
  const f = failure(r);
  throw failed(ctx, what, f.why, f.tail);
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

/**
 * Prune: keep the newest `keep` releases, never the live one nor the one undo would go back to. The listing pipeline
 * runs only when there are more entries than `keep` (counted by a glob, no process).
 */
function pruneCommand(to: string, keep: number, keepSet: string[]): string {
  const releases = q(`${to}/releases`);
  return `{ set -- ${releases}/*; [ $# -le ${keep} ] || { cd ${releases} && ls -1t | grep -v '\\.graywave-tmp$' | tail -n +${keep + 1} | grep -vxF -e ${keepSet.map(q).join(' -e ')} | while IFS= read -r d; do rm -rf -- "$d"; done; }; true; }`;
}

/** One deploy of one host: its paths and the artifact, worked out before the host is asked anything. */
interface Job {
  to: string;
  release: string;
  current: string;
  /** The artifact here, its file name and SHA-256. */
  local: string;
  name: string;
  sha: string;
  /** Where the upload lands on the host, the release's checksum marker and previous-release record, the unpack dir. */
  upload: string;
  marker: string;
  prevFile: string;
  tmp: string;
  keep: number;
}

/** The host's state before the deploy (empty strings where there is nothing). */
interface HostState {
  /** The release's checksum marker. */
  have: string;
  /** An earlier upload's checksum, hashed only when the release does not hold this artifact yet. */
  uploaded: string;
  /** Where `current` points, and the release's recorded previous release. */
  now: string;
  recorded: string;
}

/** What the deploy changes after the upload, decided from the state the same way whichever way the host is changed. */
interface Plan {
  /** Put the upload into the release (verify, unpack or move, mark, rename into place). */
  install: boolean;
  /** The upload's checksum on the host is known to match already (an earlier upload hashed by the probe, or an upload the transport checked). */
  checked: boolean;
  /** The line to write into .graywave-previous. */
  record?: string;
  /** Point `current` here. */
  switchTo?: string;
  /** Release names prune never removes. */
  keepSet: string[];
}

/** How a host's files are read and changed: through the shell, or through RemoteFiles (no process on the host). */
interface Way {
  probe(job: Job): Promise<HostState>;
  /** After the upload: install, record, switch and prune as `plan` says (after a probe of the same job). */
  apply(job: Job, plan: Plan): Promise<void>;
  /** Undo: where `current` points and the release's recorded previous release. */
  live(current: string, prevFile: string): Promise<{ now: string; recorded: string }>;
  /** Undo: point `current` at `target`, or remove it (null: no previous release). */
  switchBack(to: string, target: string | null): Promise<void>;
}

const firstLine = (text: string | undefined) => (text ?? '').split('\n')[0]!;

function mismatch(ctx: StepContext, job: Job, got: string): ProviderError {
  return new ProviderError(
    `deploy: checksum mismatch on ${ctx.host.name} after upload of ${job.name} (local ${job.sha.slice(0, 12)}, host ${got.slice(0, 12) || 'none'})`,
  );
}

const installing = (job: Job) => `installing ${job.name} as ${job.release} and switching ${job.current}`;

/** The shell way: one round trip reads the state, one changes it (each remote command costs a channel, a shell, processes). */
function shellWay(ctx: StepContext): Way {
  return {
    async probe({ sha, upload, marker, current, prevFile }) {
      // The release's checksum marker, an earlier upload's checksum (hashed only when the release is not there yet),
      // what `current` points at, and the recorded previous release. Files are read with the shell's own `read` and
      // tested before anything runs: each process costs the host a fork.
      const out = await must(
        ctx,
        'reading the release state',
        `m= u= c= v=; [ ! -f ${q(marker)} ] || IFS= read -r m < ${q(marker)}; ` +
          `[ "$m" = ${sha} ] || [ ! -f ${q(upload)} ] || { u=$(sha256sum ${q(upload)}); u=\${u%% *}; }; ` +
          `[ ! -L ${q(current)} ] || c=$(readlink ${q(current)}); [ ! -f ${q(prevFile)} ] || IFS= read -r v < ${q(prevFile)}; ` +
          `printf '%s\\n' "$m" "$u" "$c" "$v"`,
      );
      const [have = '', uploaded = '', now = '', recorded = ''] = out.split('\n');
      return { have, uploaded, now, recorded };
    },
    async apply(job, plan) {
      const { sha, upload, tmp, release, prevFile } = job;
      const steps: string[] = [];
      if (plan.install) {
        // Directories are removed only when they exist, and a plain file is moved, not copied: fewer processes.
        steps.push(
          ...(plan.checked
            ? []
            : [`got=$(sha256sum ${q(upload)}); got=\${got%% *}; [ "$got" = ${sha} ] || { rm -f ${q(upload)}; echo "checksum $got" >&2; exit 97; }`]),
          `{ [ ! -e ${q(tmp)} ] || rm -rf ${q(tmp)}; }`,
          `mkdir -p ${q(tmp)}`,
          ...(isArchive(job.name) ? [unpack(upload, job.name, tmp), `rm -f ${q(upload)}`] : [`mv -f ${q(upload)} ${q(`${tmp}/${job.name}`)}`]),
          `printf '%s\\n' ${sha} > ${q(`${tmp}/.graywave-sha256`)}`,
          `{ [ ! -e ${q(release)} ] || rm -rf ${q(release)}; }`,
          `mv -T ${q(tmp)} ${q(release)}`,
        );
      }
      if (plan.record !== undefined) steps.push(`printf '%s\\n' ${q(plan.record)} > ${q(prevFile)}`);
      if (plan.switchTo) steps.push(switchCommand(job.to, plan.switchTo));
      steps.push(pruneCommand(job.to, job.keep, plan.keepSet));
      const r = await ctx.sh(steps.join(' && '));
      // Exit 97: the corrupt upload was removed, and a retry uploads afresh.
      if (r.code === 97) throw mismatch(ctx, job, /checksum (\w*)/.exec(r.stderr)?.[1] ?? '');
      if (r.code !== 0) {
        const f = failure(r);
        throw failed(ctx, installing(job), f.why, f.tail);
      }
    },
    async live(cur, prev) {
      // One line each (a readlink that printed a line and then an `echo` would shift the record to the third line).
      const out = await must(
        ctx,
        'reading the release state',
        `c= v=; [ ! -L ${q(cur)} ] || c=$(readlink ${q(cur)}); [ ! -f ${q(prev)} ] || IFS= read -r v < ${q(prev)}; printf '%s\\n' "$c" "$v"`,
      );
      const [now = '', recorded = ''] = out.split('\n');
      return { now: now.trim(), recorded: recorded.trim() };
    },
    async switchBack(to, target) {
      if (!target) await must(ctx, `removing ${to}/current`, `rm -f ${q(`${to}/current`)}`);
      else {
        await must(ctx, `previous release ${target} is gone`, `test -d ${q(target)}`);
        await must(ctx, `switching ${to}/current back to ${target}`, switchCommand(to, target));
      }
    },
  };
}

/** A failed command or file operation of the files way, turned into the error the shell way gives. */
class Failed extends Error {
  constructor(
    readonly why: string,
    readonly tail = '',
  ) {
    super(why);
  }
}

/**
 * A command of the files way, through ctx.sh like every step command: plain words where it can, so that the remote
 * shell's driver execs it without a bash (the step's environment travels beside the command, see DRIVER).
 */
async function mustRun(ctx: StepContext, command: string): Promise<void> {
  const r = await ctx.sh(command);
  if (r.code !== 0) {
    const f = failure(r);
    throw new Failed(f.why, f.tail);
  }
}

/** The upload's SHA-256 as the host computes it: `sha256sum FILE`, one process; '' when it cannot be hashed. */
async function hostSha(ctx: StepContext, path: string): Promise<string> {
  const r = await ctx.sh(`sha256sum ${q(path)}`);
  return r.code === 0 ? r.stdout.split(' ')[0]!.trim() : '';
}

/** RemoteFiles whose every operation is written to the host log first (`deploy: sftp rename A -> B`). */
function loggedFiles(f: RemoteFiles, log: (line: string) => void): RemoteFiles {
  const say = (what: string) => log(`deploy: ${f.via} ${what}`);
  return {
    via: f.via,
    mtimeStepMs: f.mtimeStepMs,
    read: (path) => (say(`read ${path}`), f.read(path)),
    readlink: (path) => (say(`readlink ${path}`), f.readlink(path)),
    kind: (path) => (say(`lstat ${path}`), f.kind(path)),
    write: (path, text) => (say(`write ${path}: ${text.trimEnd()}`), f.write(path, text)),
    mkdirp: (path) => (say(`mkdir -p ${path}`), f.mkdirp(path)),
    rename: (from, to) => (say(`rename ${from} -> ${to}`), f.rename(from, to)),
    symlink: (target, path) => (say(`symlink ${path} -> ${target}`), f.symlink(target, path)),
    unlink: (path) => (say(`unlink ${path}`), f.unlink(path)),
    list: (dir) => (say(`list ${dir}`), f.list(dir)),
  };
}

/**
 * Promise.all that waits for every part before it fails: a request or command still under way when another failed
 * must not outlive the step (its undo could meet it on the host).
 */
async function allDone<T extends readonly unknown[]>(parts: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(parts);
  const failedPart = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failedPart) throw failedPart.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}

/** A new name for the link that becomes `<to>/current`: made under it, then renamed over the old one. */
const linkName = (to: string): string => `${to}/.current.graywave-${randomBytes(6).toString('hex')}`;

/** Renames the prepared `link` over `<to>/current` (atomic: `current` is never missing for a reader); a failed rename removes it. */
async function switchLink(f: RemoteFiles, to: string, link: string): Promise<void> {
  await f.rename(link, `${to}/current`).catch(async (err: unknown) => {
    await f.unlink(link).catch(() => undefined);
    throw err;
  });
}

/** Points `<to>/current` at `target` atomically: a symlink under a temp name, then rename(2) over the old one. */
async function switchFiles(f: RemoteFiles, to: string, target: string): Promise<void> {
  const link = linkName(to);
  await f.symlink(target, link);
  await switchLink(f, to, link);
}

/** Moves the upload into the release dir: a rename, or one `mv -f` where /tmp is another filesystem. */
async function moveIn(ctx: StepContext, f: RemoteFiles, from: string, to: string): Promise<void> {
  try {
    await f.rename(from, to);
  } catch (err) {
    ctx.log(`deploy: ${(err as Error).message}: moving it with mv (another filesystem?)`);
    await mustRun(ctx, `mv -f ${q(from)} ${q(to)}`);
  }
}

/** Prune through RemoteFiles with the shell way's rules; the shell's own listing decides where mtimes tie at the cut. */
async function pruneFiles(ctx: StepContext, f: RemoteFiles, job: Job, keepSet: string[]): Promise<void> {
  const dir = `${job.to}/releases`;
  const entries = ((await f.list(dir)) ?? []).filter((e) => !e.name.startsWith('.')); // as the glob and ls -1 see them
  if (entries.length <= job.keep) return;
  const byAge = entries.filter((e) => !e.name.endsWith('.graywave-tmp')).sort((a, b) => b.mtimeMs - a.mtimeMs);
  const [last, next] = [byAge[job.keep - 1], byAge[job.keep]];
  const step = f.mtimeStepMs;
  if (last && next && (step ? Math.floor(last.mtimeMs / step) === Math.floor(next.mtimeMs / step) : last.mtimeMs === next.mtimeMs)) {
    // Which of two releases of the same second is newer only the host's own (nanosecond) times tell.
    return mustRun(ctx, pruneCommand(job.to, job.keep, keepSet));
  }
  const old = byAge.slice(job.keep).filter((e) => !keepSet.includes(e.name));
  if (old.length) await mustRun(ctx, `rm -rf -- ${old.map((e) => q(`${dir}/${e.name}`)).join(' ')}`);
}

/**
 * The steps of an install through RemoteFiles, as the shell way's install does them, with the requests that do not
 * depend on each other sent together (each file operation is a round trip: on a WAN link that is what the host's
 * drained time is made of). `record`: the previous release's record, written into the release as it is put in place;
 * `alongside`: another request sent with the last ones, once `<to>` exists.
 */
async function installFiles(
  ctx: StepContext,
  f: RemoteFiles,
  job: Job,
  plan: Plan,
  found: { tmp: boolean; release: boolean },
  record: string | undefined,
  alongside: () => Promise<void> | undefined,
): Promise<void> {
  const { upload, tmp, release, sha, name } = job;
  if (found.tmp) await mustRun(ctx, `rm -rf ${q(tmp)}`);
  // The checksum on the host and the unpack dir at once: a bad upload leaves an empty dir, which the next try removes.
  const [got] = await allDone([plan.checked ? sha : hostSha(ctx, upload), f.mkdirp(tmp)] as const);
  if (got !== sha) {
    await f.unlink(upload); // a retry uploads afresh
    throw mismatch(ctx, job, got);
  }
  if (isArchive(name)) {
    // The archive's own files first: the marker and the record are written over whatever it holds.
    await mustRun(ctx, unpack(upload, name, tmp));
    await f.unlink(upload);
  }
  await allDone([
    isArchive(name) ? undefined : moveIn(ctx, f, upload, `${tmp}/${name}`),
    f.write(`${tmp}/.graywave-sha256`, `${sha}\n`),
    record === undefined ? undefined : f.write(`${tmp}/.graywave-previous`, `${record}\n`),
    alongside(), // once the unpack dir exists, so does its parent
  ]);
  if (found.release) await mustRun(ctx, `rm -rf ${q(release)}`);
  await f.rename(tmp, release);
}

/** Runs `fn`; a failed command or file operation becomes the shell way's error for `what`. */
async function as<T>(ctx: StepContext, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ProviderError) throw err;
    if (err instanceof Failed) throw failed(ctx, what, err.why, err.tail);
    throw failed(ctx, what, (err as Error).message);
  }
}

/**
 * The files way: the state is read by parallel file requests (one round trip of wall time), the release put in
 * place by renames and small writes; on the host only the checksum runs, plus `rm -rf` of leftovers, an unpack, or a
 * prune's removal where there is one.
 */
function filesWay(ctx: StepContext, f: RemoteFiles): Way {
  const found = { tmp: false, release: false };
  return {
    probe: (job) =>
      as(ctx, 'reading the release state', async () => {
        const [marker, now, recorded, upload, tmp, release] = await Promise.all([
          f.read(job.marker),
          f.readlink(job.current),
          f.read(job.prevFile),
          f.kind(job.upload),
          f.kind(job.tmp),
          f.kind(job.release),
        ]);
        found.tmp = tmp !== 'missing';
        found.release = release !== 'missing';
        const have = firstLine(marker);
        const uploaded = have !== job.sha && upload === 'file' ? await hostSha(ctx, job.upload) : '';
        return { have, uploaded, now: now ?? '', recorded: firstLine(recorded) };
      }),
    apply: (job, plan) =>
      as(ctx, installing(job), async () => {
        // The link that becomes `current` is made while the release is put in place (nothing reads its temp name);
        // it is renamed over `current` only once the release is there, and removed if the install fails.
        const link = plan.switchTo ? linkName(job.to) : undefined;
        const makeLink = () => (link && plan.switchTo ? f.symlink(plan.switchTo, link) : undefined);
        try {
          if (plan.install) await installFiles(ctx, f, job, plan, found, plan.record, makeLink);
          else await allDone([plan.record !== undefined ? f.write(job.prevFile, `${plan.record}\n`) : undefined, makeLink()]);
        } catch (err) {
          if (link) await f.unlink(link).catch(() => undefined);
          throw err;
        }
        // The switch and the prune's listing together: the prune never removes the new release or the previous one.
        await allDone([link ? switchLink(f, job.to, link) : undefined, pruneFiles(ctx, f, job, plan.keepSet)]);
      }),
    async live(cur, prev) {
      const [now, recorded] = await as(ctx, 'reading the release state', () => Promise.all([f.readlink(cur), f.read(prev)]));
      return { now: now ?? '', recorded: firstLine(recorded).trim() };
    },
    async switchBack(to, target) {
      if (!target) return as(ctx, `removing ${to}/current`, () => f.unlink(`${to}/current`));
      const kind = await as(ctx, `previous release ${target} is gone`, () => f.kind(target));
      // test -d follows a symlink: a link is checked where it leads.
      if (kind !== 'dir' && !(kind === 'link' && (await f.list(target)))) throw failed(ctx, `previous release ${target} is gone`, kind);
      await as(ctx, `switching ${to}/current back to ${target}`, () => switchFiles(f, to, target));
    },
  };
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

/** The paths and the artifact of one deploy (the artifact hashed once per process, see sha256File). */
async function prepare(ctx: StepContext, p: DeployParams): Promise<Job> {
  const { to, release, current } = paths(ctx, p);
  const rendered = ctx.render(p.artifact);
  const local = isAbsolute(rendered) ? rendered : resolve(ctx.playbook.dir, rendered);
  const sha = await sha256File(local).catch(() => {
    throw new ProviderError(`deploy: artifact ${local} cannot be read (built yet?)`, false);
  });
  const name = basename(local);
  // A per-host upload name: hosts may share a filesystem (and /tmp) in tests and on NFS.
  const safeHost = ctx.host.name.replace(/[^\w.-]/g, '_');
  return {
    to,
    release,
    current,
    local,
    name,
    sha,
    upload: `/tmp/graywave-${safeHost}-${sha.slice(0, 16)}-${name}`,
    marker: `${release}/.graywave-sha256`,
    prevFile: `${release}/.graywave-previous`,
    tmp: `${release}.graywave-tmp`,
    keep: p.keep,
  };
}

/**
 * RemoteFiles where the transport has them for this host (SFTP, or the local filesystem; none with sudo, as for
 * ctx.sh, whose commands run with the transport's own sudo mode), else the shell.
 */
async function wayFor(ctx: StepContext): Promise<Way> {
  const files = await ctx.transport.files?.(ctx.host);
  return files ? filesWay(ctx, loggedFiles(files, ctx.log)) : shellWay(ctx);
}

/**
 * `- deploy: { artifact, to, keep, start, healthy }` — Capistrano-style releases: upload by the transport
 * (skipped when the same checksum is already on the host), unpack into releases/<version>/, switch `current`
 * atomically, start, wait until healthy, prune old releases. Undo points `current` back and starts again.
 * Files are read and changed through the transport's RemoteFiles where it has them (SFTP: no process on the host
 * but the checksum), else through ctx.sh; the upload through ctx.transport.upload: any transport works (and sudo).
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
    const job = await prepare(ctx, p);
    const { sha, name, release, current, upload } = job;
    const way = await wayFor(ctx);
    const { have, uploaded, now, recorded } = await way.probe(job);
    // What `current` pointed to before this release went live. Kept in the release dir so that a repeated
    // do (resume, retry) still knows the real previous release after the switch has happened.
    const previous: string | null = now === release ? recorded || null : now || null;
    // The upload's checksum on the host: known to match when the probe hashed an earlier upload, or the transport
    // checked it on the host as it wrote it (the exec-channel upload); otherwise the install hashes it there.
    let checkedByUpload = false;
    if (have === sha) {
      ctx.log(`deploy: ${release} already holds ${name} (sha256 ${sha.slice(0, 12)}): upload skipped`);
    } else if (uploaded === sha) {
      ctx.log(`deploy: ${upload} already uploaded (sha256 matches): upload skipped`);
    } else {
      ctx.log(`deploy: uploading ${name} (sha256 ${sha.slice(0, 12)}) to ${ctx.host.name}:${upload}`);
      checkedByUpload = (await ctx.transport.upload(ctx.host, job.local, upload, { signal: ctx.signal, sha256: sha }))?.checked === true;
    }
    await way.apply(job, {
      install: have !== sha,
      checked: uploaded === sha || checkedByUpload,
      // Same version re-unpacked over the live one (a new artifact): the record went with the old dir.
      record: now !== release ? now : have !== sha && previous ? previous : undefined,
      switchTo: now !== release ? release : undefined,
      keepSet: [release, previous].filter((x): x is string => !!x).map((x) => basename(x)),
    });
    if (now !== release) ctx.log(`deploy: ${current} -> ${release} (was ${previous ?? 'nothing'})`);

    await start(ctx, p);
    return { to: job.to, release, previous, sha256: sha };
  },

  // A deploy that failed after switching `current` (an unhealthy start) must be switched back too.
  undoAfterFailure: true,

  async undo(ctx, p, saved) {
    const way = await wayFor(ctx);
    let s = saved as DeploySaved | undefined;
    if (!s || !s.to) {
      // The step failed before it recorded anything: read what it did from the host itself.
      const { to, release, current } = paths(ctx, p);
      const { now, recorded } = await way.live(current, `${release}/.graywave-previous`);
      if (now !== release) {
        ctx.log(`deploy undo: ${current} does not point at ${release}: nothing to undo`);
        return;
      }
      s = { to, release, previous: recorded || null, sha256: '' };
    }
    await way.switchBack(s.to, s.previous);
    if (!s.previous) {
      // First release on this host: there is nothing to go back to; the new one is out of `current`.
      ctx.log(`deploy undo: ${s.to}/current removed (no previous release)`);
      return;
    }
    ctx.log(`deploy undo: ${s.to}/current -> ${s.previous}`);
    // `start` and `healthy` run for the release that is live again: with the default release names (the version),
    // {{version}} in them is the previous release's, so that "restart app@{{version}}" restarts the right one.
    await start(ctx, p, p.release === undefined ? { version: basename(s.previous) } : undefined);
  },
};
