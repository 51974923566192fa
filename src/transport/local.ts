import { spawn } from 'node:child_process';
import { copyFile, lstat, mkdir, readdir, readFile, readlink, rename, symlink, unlink, writeFile } from 'node:fs/promises';
import { TransportError } from '../errors.js';
import type { Host } from '../playbook/types.js';
import { kindOf } from './sftp-files.js';
import type { DirEntry, ExecOptions, ExecResult, FileKind, RemoteFiles, Transport } from './types.js';

const KEEP = 64 * 1024; // bytes of stdout/stderr kept in memory per command; the full output goes to the host log

/**
 * Runs commands on this machine with bash. Each command gets its own process group so that a timeout or an abort
 * kills everything it started (a bare child.kill would leave `sleep` and friends running).
 * Written on node:child_process rather than execa because we need the process-group kill and streaming callbacks
 * with exact control of when the promise settles.
 */
export class LocalTransport implements Transport {
  constructor(private readonly cwd: string = process.cwd()) {}

  exec(_host: Host, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve) => {
      const child = spawn('/bin/bash', ['-c', command], {
        cwd: this.cwd,
        env: { ...process.env, ...(opts.env ?? {}) },
        detached: true,
        stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      const killGroup = () => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      };
      const timer = opts.timeoutMs ? setTimeout(() => ((timedOut = true), killGroup()), opts.timeoutMs) : undefined;
      const onAbort = () => killGroup();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.signal?.aborted) killGroup();
      child.stdout!.setEncoding('utf8').on('data', (c: string) => {
        stdout = (stdout + c).slice(-KEEP);
        opts.onOutput?.(c, 'stdout');
      });
      child.stderr!.setEncoding('utf8').on('data', (c: string) => {
        stderr = (stderr + c).slice(-KEEP);
        opts.onOutput?.(c, 'stderr');
      });
      if (opts.input !== undefined) child.stdin!.end(opts.input);
      child.on('error', (err) => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        resolve({ code: 127, timedOut: false, stdout, stderr: stderr + String(err.message) });
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        resolve({ code, signal: signal ?? undefined, timedOut, stdout, stderr });
      });
    });
  }

  async upload(_host: Host, localPath: string, remotePath: string): Promise<void> {
    await copyFile(localPath, remotePath);
  }

  async files(host: Host, opts: { sudo?: boolean } = {}): Promise<RemoteFiles | undefined> {
    return opts.sudo ? undefined : new LocalFiles(host.name);
  }

  async release(): Promise<void> {}
  async close(): Promise<void> {}
}

/** RemoteFiles on this machine: node:fs, no process. */
export class LocalFiles implements RemoteFiles {
  readonly via = 'fs';
  readonly mtimeStepMs = 0;

  constructor(private readonly host: string) {}

  /** "No such file" (or a path through a non-directory) is undefined; other failures name the host and path. */
  private async op<T>(what: string, path: string, run: () => Promise<T>, missing = true): Promise<T | undefined> {
    try {
      return await run();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (missing && (code === 'ENOENT' || code === 'ENOTDIR')) return undefined;
      throw new TransportError(`local ${what} ${path}: ${(err as Error).message}`, this.host);
    }
  }

  read(path: string): Promise<string | undefined> {
    return this.op('read', path, () => readFile(path, 'utf8'));
  }

  readlink(path: string): Promise<string | undefined> {
    return this.op('readlink', path, () =>
      readlink(path).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EINVAL') return undefined; // there, but no symlink
        throw err;
      }),
    );
  }

  async kind(path: string): Promise<FileKind> {
    const st = await this.op('lstat', path, () => lstat(path));
    return st ? kindOf(st) : 'missing';
  }

  async write(path: string, text: string): Promise<void> {
    await this.op('write', path, () => writeFile(path, text), false);
  }

  async mkdirp(path: string): Promise<void> {
    await this.op('mkdir', path, () => mkdir(path, { recursive: true }), false);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.op('rename', `${from} -> ${to}`, () => rename(from, to), false);
  }

  async symlink(target: string, path: string): Promise<void> {
    await this.op('symlink', `${path} -> ${target}`, () => symlink(target, path), false);
  }

  async unlink(path: string): Promise<void> {
    await this.op('unlink', path, () => unlink(path));
  }

  list(dir: string): Promise<DirEntry[] | undefined> {
    return this.op('readdir', dir, async () => {
      const names = await readdir(dir);
      const out: DirEntry[] = [];
      for (const name of names) {
        // To the microsecond (ls -t compares nanoseconds; a double in ms holds microseconds exactly enough).
        const st = await lstat(`${dir}/${name}`, { bigint: true }).catch(() => undefined);
        if (st) out.push({ name, kind: kindOf(st), mtimeMs: Number(st.mtimeNs / 1000n) / 1000 });
      }
      return out;
    });
  }
}
