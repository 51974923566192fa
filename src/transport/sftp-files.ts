import type { SFTPWrapper, Stats } from 'ssh2';
import { TransportError } from '../errors.js';
import type { DirEntry, FileKind, RemoteFiles } from './types.js';

/** SFTP status codes (draft-ietf-secsh-filexfer-02, the version OpenSSH speaks). */
const NO_SUCH_FILE = 2;
/** Bytes asked for per read: small files come back in one round trip. */
const READ_CHUNK = 64 * 1024;

type Cb<T> = (err: (Error & { code?: number }) | undefined | null, value?: T) => void;

export function kindOf(st: Pick<Stats, 'isFile' | 'isDirectory' | 'isSymbolicLink'>): FileKind {
  return st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
}

/**
 * RemoteFiles over an SFTP session (OpenSSH's sftp-server or internal-sftp): each operation is one or two requests
 * on the session the uploads use, and starts no process on the host. Written on ssh2's SFTP requests because ssh2
 * has no promise API, and a small text file is read in fewer round trips than its readFile takes (open, read; the
 * close goes out without waiting). `session` gives the host's current session (reconnecting once when the
 * connection dropped); `where` names the connection in errors.
 */
export class SftpFiles implements RemoteFiles {
  readonly via = 'sftp';
  readonly mtimeStepMs = 1000;

  constructor(
    private readonly session: () => Promise<{ sftp: SFTPWrapper; where: string }>,
    private readonly host: string,
  ) {}

  /** Runs one request; "no such file" resolves to undefined, any other failure rejects naming the host and path. */
  private async op<T>(what: string, path: string, run: (s: SFTPWrapper, cb: Cb<T>) => void, missing = true): Promise<T | undefined> {
    const { sftp, where } = await this.session();
    return new Promise<T | undefined>((res, rej) => {
      const cb: Cb<T> = (err, value) => {
        if (!err) return res(value);
        if (missing && err.code === NO_SUCH_FILE) return res(undefined);
        rej(Object.assign(new TransportError(`${where}: sftp ${what} ${path}: ${err.message}`, this.host), { sftpCode: err.code }));
      };
      try {
        run(sftp, cb);
      } catch (err) {
        cb(err as Error);
      }
    });
  }

  async read(path: string): Promise<string | undefined> {
    const handle = await this.op<Buffer>('open', path, (s, cb) => s.open(path, 'r', cb));
    if (!handle) return undefined;
    const { sftp } = await this.session();
    try {
      const parts: Buffer[] = [];
      for (let pos = 0; ;) {
        const buf = Buffer.alloc(READ_CHUNK);
        const n = (await this.op<number>('read', path, (s, cb) => s.read(handle, buf, 0, READ_CHUNK, pos, cb), false)) ?? 0;
        parts.push(buf.subarray(0, n));
        pos += n;
        // A regular file reads short only at its end (sftp-server does one read(2) per request).
        if (n < READ_CHUNK) break;
      }
      return Buffer.concat(parts).toString('utf8');
    } finally {
      sftp.close(handle, () => {});
    }
  }

  async readlink(path: string): Promise<string | undefined> {
    try {
      return await this.op<string>('readlink', path, (s, cb) => s.readlink(path, cb));
    } catch (err) {
      // No symlink there (EINVAL): OpenSSH's sftp-server says "Bad message", internal-sftp and others "Failure";
      // lstat tells that from a real error.
      if ((await this.kind(path)) !== 'link') return undefined;
      throw err;
    }
  }

  async kind(path: string): Promise<FileKind> {
    const st = await this.op<Stats>('lstat', path, (s, cb) => s.lstat(path, cb));
    return st ? kindOf(st) : 'missing';
  }

  async write(path: string, text: string): Promise<void> {
    const handle = (await this.op<Buffer>('open', path, (s, cb) => s.open(path, 'w', cb), false))!;
    const data = Buffer.from(text);
    // Requests on one handle are handled in order: the write and the close go out together.
    const wrote = this.op<void>('write', path, (s, cb) => s.write(handle, data, 0, data.length, 0, cb), false);
    const closed = this.op<void>('close', path, (s, cb) => s.close(handle, cb), false);
    await Promise.all([wrote, closed]);
  }

  async mkdirp(path: string): Promise<void> {
    try {
      await this.op<void>('mkdir', path, (s, cb) => s.mkdir(path, cb), false);
    } catch (err) {
      const code = (err as { sftpCode?: number }).sftpCode;
      if (code === NO_SUCH_FILE && path.lastIndexOf('/') > 0) {
        await this.mkdirp(path.slice(0, path.lastIndexOf('/')));
        return this.mkdirp(path);
      }
      // It exists (sftp-server says only "Failure"): fine when it is a directory, as for mkdir -p.
      if ((await this.kind(path)) !== 'dir') throw err;
    }
  }

  async rename(from: string, to: string): Promise<void> {
    // posix-rename@openssh.com is rename(2); SFTP's own RENAME refuses to replace an existing `to`.
    await this.op<void>('rename', `${from} -> ${to}`, (s, cb) => s.ext_openssh_rename(from, to, cb), false);
  }

  async symlink(target: string, path: string): Promise<void> {
    // ssh2 swaps the two arguments on the wire for OpenSSH, whose SYMLINK takes them in the other order.
    await this.op<void>('symlink', `${path} -> ${target}`, (s, cb) => s.symlink(target, path, cb), false);
  }

  async unlink(path: string): Promise<void> {
    await this.op<void>('unlink', path, (s, cb) => s.unlink(path, cb));
  }

  async list(dir: string): Promise<DirEntry[] | undefined> {
    const entries = await this.op<{ filename: string; attrs: Stats }[]>('readdir', dir, (s, cb) => s.readdir(dir, cb));
    return entries?.map((e) => ({ name: e.filename, kind: kindOf(e.attrs), mtimeMs: e.attrs.mtime * 1000 }));
  }
}
