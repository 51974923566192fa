import { spawn } from 'node:child_process';
import { copyFile } from 'node:fs/promises';
import type { Host } from '../playbook/types.js';
import type { ExecOptions, ExecResult, Transport } from './types.js';

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

  async release(): Promise<void> {}
  async close(): Promise<void> {}
}
