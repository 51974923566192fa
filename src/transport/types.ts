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

export interface UploadResult {
  /** The host computed the uploaded file's SHA-256 and it matched `sha256` (the exec-channel upload does): no need to hash it again. */
  checked: boolean;
}

export interface ExecResult {
  /** Exit code, or null when the command was killed by a signal or a timeout. */
  code: number | null;
  signal?: string;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/** What is at a path on a host, as lstat(2) sees it: a symlink is a `link`, whatever it points at. */
export type FileKind = 'file' | 'dir' | 'link' | 'other' | 'missing';

/** One entry of RemoteFiles.list. */
export interface DirEntry {
  name: string;
  kind: FileKind;
  /** Modification time (epoch ms), as precise as the way there gives it (see RemoteFiles.mtimeStepMs). */
  mtimeMs: number;
}

/**
 * File operations on a host that start no process there (ssh: the connection's SFTP session; local: node:fs), for
 * small files and directory entries: the state a deploy reads and the renames and links it makes. Paths are absolute.
 * "No such file" is `undefined` or `missing`; any other failure throws a TransportError that names the host and path.
 */
export interface RemoteFiles {
  /** How the operations travel, for the host log: `sftp` or `fs`. */
  readonly via: string;
  /** The step of list()'s mtimes in ms (SFTP carries whole seconds: 1000; 0: as precise as the filesystem). */
  readonly mtimeStepMs: number;
  /** A small text file's content; undefined when there is no such file. */
  read(path: string): Promise<string | undefined>;
  /** A symlink's target; undefined when there is nothing at `path` or it is no symlink. */
  readlink(path: string): Promise<string | undefined>;
  kind(path: string): Promise<FileKind>;
  /** Creates or truncates `path` with `text` (mode 0666 less the umask, as a shell redirection does). */
  write(path: string, text: string): Promise<void>;
  /** mkdir -p. */
  mkdirp(path: string): Promise<void>;
  /** rename(2): replaces `to` atomically (a file, a symlink or an empty directory); across filesystems it fails. */
  rename(from: string, to: string): Promise<void>;
  /** Makes `path` a symlink to `target` (ln -s target path); fails when `path` exists. */
  symlink(target: string, path: string): Promise<void>;
  /** Removes a file or symlink; nothing there is fine. */
  unlink(path: string): Promise<void>;
  /** The entries of a directory (without `.` and `..`); undefined when there is no such directory. */
  list(dir: string): Promise<DirEntry[] | undefined>;
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
  upload(host: Host, localPath: string, remotePath: string, opts?: UploadOptions): Promise<UploadResult | void>;
  /**
   * File operations on the host that start no process there, or undefined where there are none: a host without an
   * SFTP subsystem, or sudo in effect for this call (`sudo` as in ExecOptions; default: the transport's own), since
   * files must then be changed as root through the shell.
   */
  files?(host: Host, opts?: { sudo?: boolean }): Promise<RemoteFiles | undefined>;
  /** The host is done for now: close its connection if any. Idempotent. */
  release(host: Host): Promise<void>;
  /** Close everything. Idempotent. */
  close(): Promise<void>;
}
