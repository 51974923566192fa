import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { waitFor as poll } from '../../helpers/wait.js';

/**
 * Helpers shared by the integration tests: start a real server as a child process in a temp dir,
 * wait until it answers, stop it by PID. One server per test file (beforeAll/afterAll), never per test.
 */

/** A fresh temp dir, short enough for unix socket paths (< 107 bytes). */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `gw-${prefix}-`));
}

/**
 * Returns true when the binary exists. When it does not: under CI=true this throws (a missing server is a
 * failure, not a skip); elsewhere it returns false and the caller skips (use `describe.skipIf(!has)`).
 */
export function requireBinary(path: string, installHint: string): boolean {
  if (existsSync(path)) return true;
  if (process.env.CI === 'true') throw new Error(`${path} is missing (CI=true): ${installHint}`);
  return false;
}

export interface Server {
  pid: number;
  child: ChildProcess;
  dir: string;
  logFile: string;
  /** SIGTERM (or the given signal), wait for exit, SIGKILL after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
  log(): string;
}

export function startProcess(cmd: string, args: string[], opts: { dir: string; name: string; env?: NodeJS.ProcessEnv; cwd?: string }): Server {
  const logFile = join(opts.dir, `${opts.name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, {
    cwd: opts.cwd ?? opts.dir,
    env: { ...process.env, ...(opts.env ?? {}) },
    stdio: ['ignore', fd, fd],
  });
  let exited = false;
  const exitPromise = new Promise<void>((r) => child.on('exit', () => ((exited = true), r())));
  return {
    pid: child.pid!,
    child,
    dir: opts.dir,
    logFile,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) {
      if (exited) return;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exitPromise;
      clearTimeout(t);
    },
  };
}

export function isRunning(server: Server): boolean {
  return server.child.exitCode === null && server.child.signalCode === null;
}

/** Poll `probe` until it holds (test/helpers/wait.ts); fail with the server log when the process died or time ran out. */
export async function waitFor(
  probe: () => Promise<boolean> | boolean,
  what: string,
  opts: { timeoutMs?: number; everyMs?: number; server?: Server } = {},
): Promise<void> {
  const { server, ...rest } = opts;
  await poll(probe, what, {
    ...rest,
    ...(server && {
      failIf: () => (isRunning(server) ? undefined : `process exited before it was ready\n${server.log().slice(-2000)}`),
      detail: () => server.log().slice(-2000),
    }),
  });
}

export function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** A free TCP port on 127.0.0.1 (ask the kernel, then release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** SIGKILL a process that may already have ended on its own (ESRCH is not an error here). */
export function killIfAlive(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
