import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import SSHConfig from 'ssh-config';

/** `~` and `~/x` → the home directory; other relative paths resolve against `base`. */
export function expandPath(path: string, base: string): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/')) return resolve(homedir(), path.slice(2));
  return isAbsolute(path) ? path : resolve(base, path);
}

function readOptional(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// ~/.ssh/config

/** What we take from an OpenSSH client config for one host alias (only what the playbook may leave out). */
export interface SshConfigEntry {
  hostName?: string;
  user?: string;
  port?: number;
  identityFiles: string[];
  proxyJump?: string;
  userKnownHostsFiles: string[];
}

/**
 * The user's OpenSSH client config, parsed with the `ssh-config` package (maintained, handles Host patterns,
 * negation and first-value-wins like OpenSSH). `Match exec` is never evaluated: reading a config must not run
 * commands. `Include` is not followed.
 */
export class SshClientConfig {
  private constructor(private readonly config: SSHConfig | undefined) {}

  static empty(): SshClientConfig {
    return new SshClientConfig(undefined);
  }

  static parse(text: string): SshClientConfig {
    return new SshClientConfig(SSHConfig.parse(text));
  }

  /** Reads the file; a missing file is an empty config. A malformed one is an error naming the file. */
  static load(file: string = resolve(homedir(), '.ssh', 'config')): SshClientConfig {
    const text = readOptional(file);
    if (text === undefined) return SshClientConfig.empty();
    try {
      return SshClientConfig.parse(text);
    } catch (err) {
      throw new Error(`cannot parse ssh config ${file}: ${(err as Error).message}`);
    }
  }

  /** The settings OpenSSH would use for `ssh <alias>` (first match wins; %h %p %r %u %d %% and ~ expanded). */
  lookup(alias: string): SshConfigEntry {
    const entry: SshConfigEntry = { identityFiles: [], userKnownHostsFiles: [] };
    if (!this.config) return entry;
    const c = this.config.compute(alias, { ignoreCase: true, matchExec: false });
    const one = (k: string): string | undefined => {
      const v = c[k];
      return Array.isArray(v) ? v[0] : v;
    };
    const many = (k: string): string[] => {
      const v = c[k];
      if (v === undefined) return [];
      return (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(/\s+/)).filter(Boolean);
    };
    const hostName = one('hostname');
    entry.hostName = hostName ? hostName.replace(/%h/g, alias) : undefined;
    entry.user = one('user');
    const port = one('port');
    if (port !== undefined) {
      const n = Number(port);
      if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`ssh config: Port ${port} for ${alias} is not a port number`);
      entry.port = n;
    }
    const tokens = (s: string): string =>
      s.replace(/%([%hprud])/g, (_, t: string) => {
        switch (t) {
          case '%':
            return '%';
          case 'h':
            return entry.hostName ?? alias;
          case 'p':
            return String(entry.port ?? 22);
          case 'r':
            return entry.user ?? userInfo().username;
          case 'u':
            return userInfo().username;
          default:
            return homedir();
        }
      });
    // IdentityFile may repeat (compute gives an array); "none" disables it.
    const ids = c.identityfile;
    entry.identityFiles = (ids === undefined ? [] : Array.isArray(ids) ? ids : [ids])
      .filter((f) => f.toLowerCase() !== 'none')
      .map((f) => expandPath(tokens(f), homedir()));
    const jump = one('proxyjump');
    entry.proxyJump = jump && jump.toLowerCase() !== 'none' ? jump : undefined;
    entry.userKnownHostsFiles = many('userknownhostsfile').map((f) => expandPath(tokens(f), homedir()));
    return entry;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// known_hosts
//
// Hand-written: the format is a few lines of text, and the npm parsers we looked at are unmaintained or do not
// handle hashed names. What we handle: plain and hashed (`|1|salt|hash`) names, `[host]:port`, comma lists,
// `*`/`?` wildcards, `!` negation, and the `@revoked` marker. `@cert-authority` lines are ignored (no host
// certificates here), so such a host counts as unknown.

export interface KnownHostLine {
  /** 1-based line number, for messages. */
  line: number;
  marker?: 'revoked' | 'cert-authority';
  /** Comma-separated patterns, or one hashed `|1|salt|hash` name. */
  patterns: string[];
  keyType: string;
  /** The public key blob (the base64 field decoded): what the server shows in its key exchange. */
  key: Buffer;
}

export function parseKnownHosts(text: string): KnownHostLine[] {
  const out: KnownHostLine[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostLine['marker'];
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift()!.slice(1);
      if (m !== 'revoked' && m !== 'cert-authority') return; // unknown marker: OpenSSH ignores the line too
      marker = m;
    }
    const [hosts, keyType, b64] = fields;
    if (!hosts || !keyType || !b64) return;
    const key = Buffer.from(b64, 'base64');
    if (key.length === 0) return;
    out.push({ line: i + 1, marker, patterns: hosts.split(','), keyType, key });
  });
  return out;
}

/** The name OpenSSH looks up: `host` for port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$', 'i');
  return re.test(name);
}

function hashedMatch(entry: string, name: string): boolean {
  const [, , salt, hash] = entry.split('|');
  if (!salt || !hash) return false;
  const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
  return mac === hash;
}

/** Whether a line's host field names this host (OpenSSH semantics: a matching `!pattern` excludes the line). */
export function lineMatches(patterns: string[], name: string): boolean {
  let hit = false;
  for (const p of patterns) {
    if (p.startsWith('|1|')) {
      if (hashedMatch(p, name)) hit = true;
    } else if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) {
      hit = true;
    }
  }
  return hit;
}

export type HostKeyVerdict =
  | { status: 'known'; file: string; line: number }
  | { status: 'unknown' }
  | { status: 'revoked'; file: string; line: number }
  /** Keys are recorded for this host, none equal to the one offered. `sameType` tells a changed key apart. */
  | { status: 'changed'; file: string; line: number; sameType: boolean };

/** One or more known_hosts files (user, then global), read once. */
export class KnownHosts {
  private readonly lines: { file: string; entry: KnownHostLine }[] = [];

  constructor(files: string[]) {
    for (const file of files) {
      const text = readOptional(file);
      if (text === undefined) continue;
      for (const entry of parseKnownHosts(text)) this.lines.push({ file, entry });
    }
  }

  private linesFor(host: string, port: number) {
    const name = knownHostsName(host, port);
    return this.lines.filter((l) => l.entry.marker !== 'cert-authority' && lineMatches(l.entry.patterns, name));
  }

  /** Key types recorded for this host, so the key exchange can ask for those first (as OpenSSH does). */
  keyTypes(host: string, port: number): string[] {
    return [...new Set(this.linesFor(host, port).filter((l) => !l.entry.marker).map((l) => l.entry.keyType))];
  }

  /** Judge the key a server offered. `keyType` is the type name inside the blob (e.g. ssh-ed25519). */
  verify(host: string, port: number, key: Buffer): HostKeyVerdict {
    const revoked = this.lines.find((l) => l.entry.marker === 'revoked' && l.entry.key.equals(key));
    if (revoked) return { status: 'revoked', file: revoked.file, line: revoked.entry.line };
    const mine = this.linesFor(host, port).filter((l) => !l.entry.marker);
    const same = mine.find((l) => l.entry.key.equals(key));
    if (same) return { status: 'known', file: same.file, line: same.entry.line };
    if (mine.length === 0) return { status: 'unknown' };
    const type = keyBlobType(key);
    const sameType = mine.find((l) => l.entry.keyType === type);
    const first = sameType ?? mine[0]!;
    return { status: 'changed', file: first.file, line: first.entry.line, sameType: !!sameType };
  }
}

/** The key type named at the start of an SSH public key blob (uint32 length + name). */
export function keyBlobType(key: Buffer): string {
  if (key.length < 4) return '?';
  const len = key.readUInt32BE(0);
  return key.subarray(4, 4 + len).toString('latin1');
}

/** SHA256 fingerprint as OpenSSH prints it (`SHA256:…` without padding). */
export function fingerprint(key: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
}
