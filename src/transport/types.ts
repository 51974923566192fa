import type { Host } from '../playbook/types.js';

export interface ExecOptions {
  /** Exported to the command (GRAYWAVE_* and the like). */
  env?: Record<string, string>;
  /** Kill the command (the whole process group / remote command) after this long. */
  timeoutMs?: number;
  /** Aborting kills the command. */
  signal?: AbortSignal;
  /** Output as it arrives (for the host log file and the live view). */
  onOutput?: (chunk: string, stream: 'stdout' | 'stderr') => void;
  /** Feed this to the command's stdin. */
  input?: string;
  /** Run through `sudo -n` (ssh transport with `sudo: true`). */
  sudo?: boolean;
}

export interface UploadOptions {
  signal?: AbortSignal;
  /** The file's SHA-256 (hex) when the caller knows it: spares the transport hashing it again. */
  sha256?: string;
}

export interface ExecResult {
  /** Exit code, or null when the command was killed by a signal or a timeout. */
  code: number | null;
  signal?: string;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/**
 * The narrow door through which every command on a host goes.
 * `exec` resolves (never rejects) for commands that ran, whatever their exit code;
 * it rejects with a TransportError when the host cannot be reached at all.
 */
export interface Transport {
  exec(host: Host, command: string, opts?: ExecOptions): Promise<ExecResult>;
  /**
   * Copy a local file to the host (ssh: SFTP, or a stream over an exec channel checked by SHA-256 where the host
   * has no SFTP subsystem). Creates no directories.
   */
  upload(host: Host, localPath: string, remotePath: string, opts?: UploadOptions): Promise<void>;
  /** The host is done for now: close its connection if any. Idempotent. */
  release(host: Host): Promise<void>;
  /** Close everything. Idempotent. */
  close(): Promise<void>;
}
