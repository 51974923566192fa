import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { Duplex } from 'node:stream';
import { homedir, userInfo } from 'node:os';
import { resolve } from 'node:path';
import { createRequire } from 'node:module';
import type { Client as ClientT, ClientChannel, ConnectConfig, SFTPWrapper } from 'ssh2';
import { quote } from 'shell-quote';
import { z } from 'zod';
import { ConfigError, TransportError, type ConfigIssue } from '../errors.js';
import type { Host } from '../playbook/types.js';
import { duration } from '../util/duration.js';
import { secretRef, type Secrets } from '../util/secrets.js';
import { sha256OfFile } from '../util/sha256.js';
import { LocalTransport } from './local.js';
import { driverCommand, newNonce, RemoteShell, ShellEnded, startedQuery, stepShellFlags } from './remote-shell.js';
import {
  canonicalName,
  expandPath,
  jumpLoop,
  sshConfigIssues,
  validJump,
  fingerprint,
  keyBlobType,
  KnownHosts,
  knownHostsName,
  SshClientConfig,
  type SshCommandLine,
  type SshConfigEntry,
} from './ssh-config.js';
import { SftpFiles } from './sftp-files.js';
import type { ExecOptions, ExecResult, RemoteFiles, Transport, UploadOptions, UploadResult } from './types.js';

// Loaded when the first host is reached: status, plan and local runs never need SSH (and ssh2 is 40 modules).
const requireCjs = createRequire(import.meta.url);
let ssh2Lib: typeof import('ssh2') | undefined;
const ssh2 = (): typeof import('ssh2') => (ssh2Lib ??= requireCjs('ssh2') as typeof import('ssh2'));

/** `transport: { type: ssh, ... }` minus `type`. Unknown keys are errors. */
export const sshTransportOptions = z
  .object({
    /** Login user. Default: `User` from ~/.ssh/config, else the local user name. */
    user: z.string().min(1).optional(),
    /** Default: `Port` from ~/.ssh/config, else 22. A host's own `port` wins. */
    port: z.number().int().min(1).max(65535).optional(),
    /** Private key. Default: `IdentityFile` from ~/.ssh/config, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa. */
    identityFile: z.string().min(1).optional(),
    /** true: the agent at $SSH_AUTH_SOCK; a string: that socket. Default: the agent when SSH_AUTH_SOCK is set. */
    agent: z.union([z.boolean(), z.string().min(1)]).optional(),
    /** Passphrase of an encrypted identityFile: a secret reference, never the passphrase itself. */
    passphrase: secretRef.optional(),
    /** Default: `UserKnownHostsFile` from ~/.ssh/config, else ~/.ssh/known_hosts, plus /etc/ssh/ssh_known_hosts. */
    knownHostsFile: z.string().min(1).optional(),
    /** An unknown or changed host key fails that host. false: accept (and log) them. */
    strictHostKeyChecking: z.boolean().default(true),
    /**
     * ProxyJump: `[user@]host[:port]`, several hops comma-separated (each resolved through its own Host block in
     * ~/.ssh/config), or `none`. Default: `ProxyJump` (else `ProxyCommand`) from ~/.ssh/config.
     */
    jumpHost: z
      .string()
      .min(1)
      .refine(validJump, { message: "not OpenSSH's [user@]host[:port] (or ssh://[user@]host[:port]), comma-separated, or none" })
      .optional(),
    connectTimeout: duration.default('10s'),
    /**
     * Run every command as root through sudo. true: `sudo -n` (the host's sudoers must not ask for a password);
     * `{ password: { env: NAME } }`: the password is fed to `sudo -S` on stdin (never on a command line or in a log).
     */
    sudo: z.union([z.boolean(), z.object({ password: secretRef }).strict()]).default(false),
    /**
     * false (default): steps run in a bash without rc or profile files (the login shell sshd starts pays them once
     * per connection); true: every step runs in a login bash (`bash --login`: /etc/profile, ~/.bash_profile or
     * ~/.profile), which costs the host's profile time on every step.
     */
    loginShell: z.boolean().default(false),
    /** OpenSSH client config to read Host entries from (default ~/.ssh/config); false: read none. */
    configFile: z.union([z.string().min(1), z.literal(false)]).optional(),
  })
  .strict();

export type SshTransportOptions = z.output<typeof sshTransportOptions>;

/**
 * What `validate` finds in the ssh client config for these hosts: each looked up as the transport will (its own
 * user, port and jumpHost, else the playbook's, as ssh -l -p -J), with the jump hosts on its way.
 */
export function sshTransportIssues(o: SshTransportOptions, dir: string, hosts: Host[]): ConfigIssue[] {
  const cli = (h: Host): SshCommandLine => ({ user: h.ssh?.user ?? o.user, port: h.ssh?.port ?? h.port ?? o.port, jump: h.ssh?.jumpHost ?? o.jumpHost });
  return sshConfigIssues(
    o.configFile,
    dir,
    hosts.map((h) => ({ address: h.address, cli: cli(h) })),
  );
}

export interface SshTransportEnv {
  /** Playbook directory: relative key and known_hosts paths resolve against it. */
  dir: string;
  secrets: Secrets;
  /** Connection-level notes for the host log (connected, accepted an unknown key …). Optional. */
  log?: (host: Host, line: string) => void;
}

const KEEP = 64 * 1024; // bytes of output kept per command, as in LocalTransport; the full output streams to onOutput
const PID_MARK = '\x1egraywave-pid=';
const KILL_GRACE_MS = 5_000;
// bash reads a command from a pipe a byte at a time: a script longer than this goes through a session of its own.
const SHELL_MAX_COMMAND = 64 * 1024;
// How long closing a connection waits for its remote shell to end (it removes its record of started commands).
const SHELL_QUIT_WAIT_MS = 2_000;
// Host key types ssh2 can negotiate, for asking the server for the type known_hosts has (as OpenSSH does).
const HOSTKEY_ALGOS: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/** One SSH connection to make: a target host, or a jump host on the way to one. */
interface Hop {
  /** The name as given (playbook address or ProxyJump hop): `%n`, and in messages. */
  alias: string;
  host: string;
  port: number;
  user: string;
  identityFiles: { path: string; explicit: boolean }[];
  agent?: string;
  /** known_hosts files (user files, then global ones) and the name looked up there (HostKeyAlias, else [host]:port). */
  knownHostsFiles: string[];
  hostKeyName: string;
  /**
   * How the TCP stream is made, as OpenSSH builds it: through a jump host's connection (ProxyJump: the implicit
   * `ssh -W` of the last hop, which follows its own Host block), or a ProxyCommand; else a direct connection.
   */
  via?: { jump: Hop } | { command: string };
}

/** Deepest ProxyJump chain followed (a Host block that jumps through itself would loop forever in OpenSSH). */
const MAX_HOPS = 16;

interface Conn {
  client: ClientT;
  where: string;
  dead: boolean;
  sftp?: Promise<SFTPWrapper>;
  /** The host refused the SFTP subsystem: uploads go over an exec channel. */
  noSftp?: boolean;
  /** Kills in flight: release/close wait for them, or ending the connection would cancel them. */
  kills: Set<Promise<void>>;
  /** The host's command loop (see remote-shell.ts), started with the first command. */
  shell?: Promise<RemoteShell>;
}

/** Exit status per channel, recorded as soon as the channel exists (see channel()). */
const exits = new WeakMap<ClientChannel, { code: number | null; signal?: string }>();

/** Drops what precedes the first NUL on stdin (the sudo password, when sudo did not read it); see sudoMode(). */
const SUDO_SKIP = "IFS= read -r -d '' _ || :; ";

/** What a person must change when sudo refused for a reason it states on stderr. */
function sudoHint(stderr: string, withPassword: boolean): string | undefined {
  if (/must have a tty|terminal is required/i.test(stderr)) {
    return 'sudo on this host wants a terminal (sudoers `Defaults requiretty`); graywave runs commands without one: allow it for this user (`Defaults:USER !requiretty`)';
  }
  if (/password is required|no password was provided/i.test(stderr) && !withPassword) {
    return 'sudo on this host asks for a password and none was given: set transport.sudo: { password: { env: NAME } } (or a NOPASSWD rule in sudoers)';
  }
  if (/incorrect password|try again|no password was provided/i.test(stderr)) return 'sudo refused the password from transport.sudo.password';
  return undefined;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The timeout and abort of one remote command, for both ways a command runs (its own session, the host's shell):
 * on either, kill the command's process group once its PID is known (`kill`), and if no end is confirmed within a
 * grace period, stop waiting (`giveUp`).
 */
class CommandStopper {
  killing = false;
  timedOut = false;
  private pid?: number;
  private fallback?: NodeJS.Timeout;
  private readonly timer?: NodeJS.Timeout;
  private readonly onAbort = () => this.stop('abort');

  constructor(
    private readonly opts: ExecOptions,
    private readonly kill: (pid: number) => void,
    private readonly giveUp: () => void,
    /** True once the command has ended by itself: nothing left to stop. */
    private readonly ended: () => boolean = () => false,
  ) {
    // setTimeout fires at once beyond 2^31-1 ms: treat such a timeout as none.
    if (opts.timeoutMs && opts.timeoutMs < 2 ** 31) this.timer = setTimeout(() => this.stop('timeout'), opts.timeoutMs);
    opts.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (opts.signal?.aborted) this.stop('abort'); // aborted while the connection (or the shell) was starting
  }

  /** The command's PID, once the host reported it: a stop asked for before then lands now. */
  started(pid: number): void {
    this.pid = pid;
    if (this.killing) this.kill(pid);
  }

  private stop(why: 'timeout' | 'abort'): void {
    if (this.killing || this.ended()) return;
    this.killing = true;
    if (why === 'timeout') this.timedOut = true;
    if (this.pid !== undefined) this.kill(this.pid);
    // If the kill cannot land (no PID yet, dead connection), stop waiting after a grace period.
    this.fallback = setTimeout(this.giveUp, KILL_GRACE_MS);
  }

  dispose(): void {
    clearTimeout(this.timer);
    clearTimeout(this.fallback);
    this.opts.signal?.removeEventListener('abort', this.onAbort);
  }
}

/**
 * Runs steps on hosts over SSH (ssh2). One connection per host, opened on first use, reused for all of that
 * host's steps and closed by release(). Each command runs in the process group sshd gives its session; a
 * timeout or an abort kills that whole group through a second channel (ssh `signal` requests only reach one
 * process, and not a sudo'd one).
 */
export class SshTransport implements Transport {
  private readonly conns = new Map<string, Promise<Conn>>();
  private readonly jumps = new Map<string, Promise<Conn>>();
  /** Connections of released hosts still ending (their remote shell quitting). */
  private readonly ending = new Set<Promise<void>>();
  private readonly config: SshClientConfig;
  /** known_hosts files read once per set of files (hosts may name their own UserKnownHostsFile). */
  private readonly knownHostsSets = new Map<string, KnownHosts>();
  private readonly passphrase?: string;
  /** sudo as configured (`sudo: true` or with a password) and its password, if any. */
  private readonly sudoOn: boolean;
  private readonly sudoPassword?: string;
  private readonly local: LocalTransport;
  private closed = false;
  private readonly configWarned = new Set<string>();
  /** Private keys parsed so far (see auth()). */
  private readonly parsedKeys = new Map<string, ReturnType<typeof import('ssh2').utils.parseKey>>();

  constructor(
    private readonly opts: SshTransportOptions,
    private readonly env: SshTransportEnv,
  ) {
    this.config =
      opts.configFile === false ? SshClientConfig.empty() : SshClientConfig.load(opts.configFile ? expandPath(opts.configFile, env.dir) : undefined);
    this.passphrase = opts.passphrase ? env.secrets.resolve(opts.passphrase) : undefined;
    this.sudoOn = opts.sudo !== false;
    this.sudoPassword = typeof opts.sudo === 'object' ? env.secrets.resolve(opts.sudo.password) : undefined;
    if (this.sudoPassword?.includes('\n')) throw new TransportError('the sudo password cannot contain a line break');
    this.local = new LocalTransport(env.dir);
  }

  /** ssh_config lines that apply to this host (or one of its jump hosts) but are not honoured: logged once per host. */
  private reportConfigWarnings(host: Host, jump: string, warnings: string[]): void {
    const key = `${host.name}\0${jump}`;
    if (this.configWarned.has(key)) return;
    this.configWarned.add(key);
    for (const w of warnings) this.env.log?.(host, `warning: ssh config ${jump ? `(jump host ${jump}) ` : ''}${w}`);
  }

  /** `address: local` runs on this machine (mixed fleets); everything else goes over SSH. */
  private isLocal(host: Host): boolean {
    return host.address === 'local';
  }

  private mask(text: string): string {
    return this.env.secrets.mask(text);
  }

  /**
   * Where and how to reach a host. Each setting comes from, first found: the host's own `ssh:` (and its `port`),
   * the playbook's transport, the host's Host block in ~/.ssh/config, OpenSSH's default. The host's and playbook's
   * user, port and jumpHost are what `ssh -l -p -J` would be: they win over the config and are what its `%r`, `%p`
   * tokens expand to.
   */
  private target(host: Host): Promise<Hop> {
    const own = host.ssh ?? {};
    const identity = own.identityFile ?? this.opts.identityFile;
    const cli: SshCommandLine = { user: own.user ?? this.opts.user, port: own.port ?? host.port ?? this.opts.port, jump: own.jumpHost ?? this.opts.jumpHost };
    return this.resolveHop(host, host.address, cli, identity ? [{ path: expandPath(identity, this.env.dir), explicit: true }] : undefined, 0);
  }

  /**
   * One connection of a host's route, as OpenSSH resolves `ssh` with this command line: its Host block, then how it
   * is reached. A ProxyJump `a,b,c` makes the connection go through `c`, itself reached as `ssh -J a,b c` (so `c`'s
   * own ProxyJump or ProxyCommand is not used, but `a`'s is: OpenSSH's chain). A jump host's user, port and keys come
   * from its hop spec, then its Host block; what it leaves open comes from the transport (user) and the host behind
   * it (keys).
   */
  private async resolveHop(host: Host, alias: string, cli: SshCommandLine, keys: Hop['identityFiles'] | undefined, depth: number): Promise<Hop> {
    if (depth > MAX_HOPS)
      throw new TransportError(`jump host: more than ${MAX_HOPS} ProxyJump hops to reach ${host.address} (a loop through Host blocks?)`, host.name);
    let cfg: SshConfigEntry;
    try {
      cfg = this.config.lookup(alias, cli);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new TransportError(`ssh ${alias}: ${errMessage(err)}`, host.name);
    }
    if (cfg.canonicalize) {
      const canonical = await canonicalName(cfg.canonicalize).catch((err: Error) => {
        throw new TransportError(`ssh ${alias}: ${err.message}`, host.name);
      });
      if (canonical !== undefined) {
        this.env.log?.(host, `ssh config: ${cfg.canonicalize.where}: ${alias} canonicalised to ${canonical}`);
        cfg = this.config.lookup(alias, cli, canonical);
      }
    }
    this.reportConfigWarnings(host, depth === 0 ? '' : alias, cfg.warnings);
    const user = cfg.user ?? (depth === 0 ? undefined : this.opts.user) ?? userInfo().username;
    let identityFiles = keys;
    if (cfg.identityFiles.length && (depth > 0 || !identityFiles)) identityFiles = cfg.identityFiles.map((path) => ({ path, explicit: true }));
    identityFiles ??= ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => ({ path: resolve(homedir(), '.ssh', f), explicit: false }));
    let agent: string | undefined;
    if (typeof this.opts.agent === 'string') agent = expandPath(this.opts.agent, this.env.dir);
    else if (this.opts.agent === true) {
      agent = process.env.SSH_AUTH_SOCK;
      if (!agent) throw new TransportError(`transport.agent is true but SSH_AUTH_SOCK is not set: start ssh-agent, or use identityFile`, host.name);
    } else if (this.opts.agent === undefined) agent = process.env.SSH_AUTH_SOCK || undefined;
    const hostName = cfg.hostName ?? alias;
    const port = cfg.port ?? 22;
    const userFiles = this.opts.knownHostsFile
      ? [expandPath(this.opts.knownHostsFile, this.env.dir)]
      : (cfg.userKnownHostsFiles ?? ['known_hosts', 'known_hosts2'].map((f) => resolve(homedir(), '.ssh', f)));
    const hop: Hop = {
      alias,
      host: hostName,
      port,
      user,
      identityFiles,
      agent,
      knownHostsFiles: [...userFiles, ...(cfg.globalKnownHostsFiles ?? ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'])],
      hostKeyName: cfg.hostKeyAlias ?? knownHostsName(hostName, port),
    };
    if (cfg.jump) {
      const j = cfg.jump;
      if (jumpLoop(cfg, alias, user)) {
        throw new TransportError(`jump host: ${alias} jumps through itself (${user}@${hostName}:${port}); OpenSSH stops with "jumphost loop" too`, host.name);
      }
      hop.via = { jump: await this.resolveHop(host, j.host, { user: j.user, port: j.port, jump: j.extra }, identityFiles, depth + 1) };
    } else if (cfg.proxyCommand) hop.via = { command: cfg.proxyCommand };
    return hop;
  }

  private knownHostsOf(hop: Hop): KnownHosts {
    const key = hop.knownHostsFiles.join('\0');
    let k = this.knownHostsSets.get(key);
    if (!k) this.knownHostsSets.set(key, (k = new KnownHosts(hop.knownHostsFiles)));
    return k;
  }

  /** The authentication methods to try, in order; keys are read and decrypted here so failures name the file. */
  private auth(t: Hop, who: string): NonNullable<ConnectConfig['authHandler']> {
    const methods: any[] = [];
    if (t.agent) methods.push({ type: 'agent', username: t.user, agent: t.agent });
    for (const id of t.identityFiles) {
      let data: Buffer;
      try {
        data = readFileSync(id.path);
      } catch {
        if (id.explicit) throw new TransportError(`${who}: identity file ${id.path} cannot be read`);
        continue;
      }
      // Parsed (and decrypted: bcrypt for an encrypted OpenSSH key costs tens of ms) once per file and content for
      // the whole fleet; ssh2 takes the parsed key as it is instead of parsing it again for every connection.
      const cacheKey = `${id.path}\0${createHash('sha256').update(data).digest('hex')}`;
      let parsed = this.parsedKeys.get(cacheKey);
      if (!parsed) {
        parsed = ssh2().utils.parseKey(data, this.passphrase);
        if (!(parsed instanceof Error)) this.parsedKeys.set(cacheKey, parsed);
      }
      if (parsed instanceof Error) {
        if (!id.explicit) continue;
        if (/encrypted/i.test(parsed.message) && !this.passphrase) {
          throw new TransportError(`${who}: identity file ${id.path} is encrypted: set transport.passphrase: {env: NAME} and export the passphrase in NAME`);
        }
        throw new TransportError(`${who}: cannot use identity file ${id.path}: ${this.mask(parsed.message)} (wrong passphrase?)`);
      }
      methods.push({ type: 'publickey', username: t.user, key: parsed });
    }
    if (methods.length === 0) {
      throw new TransportError(
        `${who}: no SSH credentials: set transport.identityFile, or agent: true with SSH_AUTH_SOCK, or an IdentityFile in ~/.ssh/config`,
      );
    }
    return methods;
  }

  private describeAuth(t: Hop): string {
    const parts = t.identityFiles.filter((f) => f.explicit).map((f) => `key ${f.path}`);
    if (t.agent) parts.push('the ssh agent');
    return parts.join(', ') || 'the default keys';
  }

  /** Opens one SSH connection (through `sock` when jumping), with host key checking against known_hosts. */
  private open(host: Host, t: Hop, sock?: NodeJS.ReadableStream & NodeJS.WritableStream): Promise<Conn> {
    const who = `ssh ${t.user}@${t.host}:${t.port}${host.name !== t.host ? ` (host ${host.name})` : ''}`;
    const authHandler = this.auth(t, who);
    const client = new (ssh2().Client)();
    const conn: Conn = { client, where: who, dead: false, kills: new Set() };
    let keyProblem: string | undefined;
    const knownHosts = this.knownHostsOf(t);
    const name = t.hostKeyName;
    const types = knownHosts.keyTypes(name).flatMap((k) => HOSTKEY_ALGOS[k] ?? []);
    const cfg: ConnectConfig = {
      host: t.host,
      port: t.port,
      username: t.user,
      sock: sock as ConnectConfig['sock'],
      readyTimeout: this.opts.connectTimeout,
      keepaliveInterval: 10_000,
      keepaliveCountMax: 3,
      authHandler,
      algorithms: types.length ? { serverHostKey: { remove: types, prepend: types } as any } : undefined,
      hostVerifier: (key: Buffer) => {
        const v = knownHosts.verify(name, key);
        const shown = `${keyBlobType(key)} ${fingerprint(key)}`;
        const files = t.knownHostsFiles.join(', ');
        const aliased = name !== knownHostsName(t.host, t.port) ? ` (HostKeyAlias of ${t.host}:${t.port})` : '';
        switch (v.status) {
          case 'known':
            return true;
          case 'revoked':
            keyProblem = `host key ${shown} of ${name} is marked @revoked in ${v.file}:${v.line}; refusing to connect`;
            return false;
          case 'unknown':
            if (!this.opts.strictHostKeyChecking) {
              this.env.log?.(host, `warning: ${name} is not in known_hosts (${shown}); accepted because strictHostKeyChecking is false`);
              return true;
            }
            keyProblem =
              `host key of ${name}${aliased} is unknown (${shown}, not in ${files}) and strictHostKeyChecking is on. ` +
              (aliased
                ? `Check the fingerprint, then add it under its alias: echo '${name} ${keyBlobType(key)} ${key.toString('base64')}' >> ${t.knownHostsFiles[0]}`
                : `Check the fingerprint, then add it: ssh-keyscan -p ${t.port} ${t.host} >> ${t.knownHostsFiles[0]}`);
            return false;
          case 'changed': {
            const what = v.sameType ? 'HOST KEY CHANGED' : `host key of another type than recorded`;
            if (!this.opts.strictHostKeyChecking) {
              this.env.log?.(host, `WARNING: ${what} for ${name} (${shown}, ${v.file}:${v.line} differs); accepted because strictHostKeyChecking is false`);
              return true;
            }
            keyProblem =
              `${what} for ${name}${aliased}: the server offers ${shown}, but ${v.file}:${v.line} records another key. ` +
              `Someone may be intercepting the connection, or the host was reinstalled. If the change is expected: ssh-keygen -R '${name}' -f ${v.file}`;
            return false;
          }
        }
      },
    };
    return new Promise<Conn>((resolveConn, reject) => {
      let ready = false;
      client.on('ready', () => {
        // Steps are small request/response exchanges: without TCP_NODELAY, Nagle plus delayed ACKs add ~40 ms to
        // every command (measured: 49 ms → a few ms per `true` on loopback).
        client.setNoDelay(true);
        ready = true;
        resolveConn(conn);
      });
      client.on('error', (err: Error & { level?: string; code?: string }) => {
        conn.dead = true;
        if (ready) return; // a dropped live connection: the running command or the next call reports it
        let why: string;
        if (keyProblem) why = keyProblem;
        else if (err.level === 'client-authentication') {
          why = `authentication refused for user ${t.user} (tried ${this.describeAuth(t)}). Is the public key in ~${t.user}/.ssh/authorized_keys on the host, and the user right?`;
        } else if (err.level === 'client-timeout') why = `no SSH handshake within ${this.opts.connectTimeout} ms (connectTimeout): host down or filtered?`;
        else if (err.code === 'ECONNREFUSED') why = `connection refused: is sshd listening on ${t.host}:${t.port}?`;
        else why = errMessage(err);
        reject(new TransportError(this.mask(`${who}: ${why}`), host.name));
      });
      client.on('close', () => {
        conn.dead = true;
        if (!ready) reject(new TransportError(this.mask(`${who}: ${keyProblem ?? 'connection closed during the handshake'}`), host.name));
      });
      try {
        client.connect(cfg);
        client.setNoDelay(true); // the handshake is round trips too
      } catch (err) {
        reject(new TransportError(this.mask(`${who}: ${errMessage(err)}`), host.name));
      }
    });
  }

  /** What identifies a route (the hop and everything it goes through): connections to jump hosts are shared by it. */
  private routeKey(hop: Hop): string {
    const via = !hop.via ? '' : 'jump' in hop.via ? ` via ${this.routeKey(hop.via.jump)}` : ` via command ${hop.via.command}`;
    return `${hop.user}@${hop.host}:${hop.port}${via}`;
  }

  /** The connection to a jump host (through its own route), shared by every host behind it. */
  private jumpConn(host: Host, hop: Hop): Promise<Conn> {
    const key = this.routeKey(hop);
    const cached = this.jumps.get(key);
    if (cached) return cached.then((c) => (c.dead ? this.reopenJump(key, host, hop) : c));
    return this.reopenJump(key, host, hop);
  }

  private reopenJump(key: string, host: Host, hop: Hop): Promise<Conn> {
    const p = this.openVia(host, hop).catch((err: Error) => {
      this.jumps.delete(key);
      throw err instanceof TransportError && err.message.startsWith('jump host') ? err : new TransportError(`jump host: ${err.message}`, host.name);
    });
    this.jumps.set(key, p);
    return p;
  }

  /** Opens the connection to `hop` the way its route says: directly, through its jump host, or its ProxyCommand. */
  private async openVia(host: Host, hop: Hop): Promise<Conn> {
    if (!hop.via) return this.open(host, hop);
    if ('jump' in hop.via) {
      const jump = await this.jumpConn(host, hop.via.jump);
      return this.open(host, hop, await this.forward(host, jump, hop));
    }
    const command = hop.via.command;
    const { sock, child } = this.proxy(host, command);
    const conn = await this.open(host, hop, sock).catch((err: Error) => {
      child.kill('SIGKILL');
      throw new TransportError(`${err.message} (through ProxyCommand ${command})`, host.name);
    });
    conn.client.on('close', () => child.kill());
    return conn;
  }

  /** A TCP stream to `to`, opened by the host at the other end of `via` (ssh -W). */
  private forward(host: Host, via: Conn, to: Hop): Promise<ClientChannel> {
    return new Promise<ClientChannel>((res, rej) =>
      via.client.forwardOut('127.0.0.1', 0, to.host, to.port, (err, s) =>
        err ? rej(new TransportError(`${via.where}: cannot forward to ${to.host}:${to.port}: ${err.message}`, host.name)) : res(s),
      ),
    );
  }

  /**
   * ProxyCommand: runs it as OpenSSH does (`$SHELL -c 'exec COMMAND'`, /bin/sh without SHELL) and speaks SSH over its
   * stdin/stdout; its stderr goes to the host log. The process ends with the connection.
   */
  private proxy(host: Host, command: string): { sock: Duplex; child: ChildProcess } {
    const child = spawn(process.env.SHELL || '/bin/sh', ['-c', `exec ${command}`], { stdio: ['pipe', 'pipe', 'pipe'] });
    const sock = Duplex.from({ readable: child.stdout, writable: child.stdin });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => this.env.log?.(host, this.mask(`ProxyCommand: ${c.trimEnd()}`)));
    child.on('error', (err) => sock.destroy(err));
    child.on('exit', () => sock.push(null));
    return { sock, child };
  }

  private async connectFresh(host: Host): Promise<Conn> {
    if (this.closed) throw new TransportError(`ssh transport is closed`, host.name);
    return this.openVia(host, await this.target(host));
  }

  /** The host's connection: the open one, or a new one when there is none or it has dropped. */
  private async connection(host: Host, fresh = false): Promise<Conn> {
    const cached = this.conns.get(host.name);
    if (cached && !fresh) {
      const c = await cached.catch(() => undefined);
      if (c && !c.dead) return c;
    }
    if (cached)
      void cached.then(
        (c) => c.client.end(),
        () => {},
      );
    const p = this.connectFresh(host);
    this.conns.set(host.name, p);
    p.catch(() => {
      if (this.conns.get(host.name) === p) this.conns.delete(host.name);
    });
    return p;
  }

  private channel(conn: Conn, command: string): Promise<ClientChannel> {
    return new Promise((res, rej) => {
      try {
        conn.client.exec(command, (err, ch) => {
          if (err) return rej(err);
          // Listen now: a fast command's exit-status may arrive in the same TCP read as the exec reply, and
          // ssh2 emits it synchronously, before an awaiting caller could attach a listener.
          ch.on('exit', (code: number | null, signal?: string) => exits.set(ch, { code, signal: signal ?? undefined }));
          res(ch);
        });
      } catch (err) {
        rej(err);
      }
    });
  }

  /** Opens an exec channel; a connection found dropped is reopened once. */
  private async openChannel(host: Host, command: string): Promise<{ conn: Conn; ch: ClientChannel }> {
    let conn = await this.connection(host);
    try {
      return { conn, ch: await this.channel(conn, command) };
    } catch (err) {
      this.env.log?.(host, `ssh connection unusable (${errMessage(err)}); reconnecting once`);
      conn = await this.connection(host, true);
      try {
        return { conn, ch: await this.channel(conn, command) };
      } catch (err2) {
        throw new TransportError(this.mask(`${conn.where}: cannot start a command: ${errMessage(err2)}`), host.name);
      }
    }
  }

  /** Whether a command runs through sudo. */
  private sudoFor(opts: ExecOptions): boolean {
    return opts.sudo ?? this.sudoOn;
  }

  /**
   * The prefix that runs a command as root, and what goes first on its stdin. With a password: `sudo -S` reads it
   * from stdin (a line), followed by a NUL that the command's shell reads up to and drops (see SUDO_SKIP): whether
   * sudo asked for the password (a cached or NOPASSWD rule does not) the shell then starts reading at the same
   * place. Two empty lines after the password make a refused password end sudo at once (its retries read them)
   * instead of waiting for a line that never comes.
   */
  private sudoMode(sudo: boolean): { prefix: string; preamble?: string } {
    if (!sudo) return { prefix: '' };
    if (this.sudoPassword === undefined) return { prefix: 'sudo -n -- ' };
    return { prefix: "sudo -S -p '' -- ", preamble: `${this.sudoPassword}\n\n\n\0` };
  }

  private wrap(command: string, opts: ExecOptions): { remote: string; preamble?: string } {
    // sshd makes the session's shell a process group (and session) leader: report its PID first, then exec the
    // command in it, so that the PID names the whole group for a kill, and exit status/signal come back unaltered.
    // The environment goes on the command line because sshd drops `env` requests unless AcceptEnv allows them.
    // Without sudo the variables are exported by the login shell itself (one process fewer per step); sudo resets
    // the environment, so there they travel through env(1) after it. The login shell (bash, dash, zsh …) has paid
    // its rc files; the bash that runs the step does not read them again (stepShellFlags).
    const pidLine = `printf '\\036graywave-pid=%s\\n' "$$" >&2; `;
    const bash = `/bin/bash ${stepShellFlags(this.opts.loginShell)} -c `;
    const sudo = this.sudoMode(this.sudoFor(opts));
    if (!sudo.prefix) return { remote: pidLine + this.envExports(opts) + `exec ${bash}${quote([command])}` };
    const skip = sudo.preamble ? SUDO_SKIP : '';
    return { remote: pidLine + 'exec ' + sudo.prefix + bash + quote([skip + this.envExports(opts) + command]), preamble: sudo.preamble };
  }

  private kill(host: Host, conn: Conn, pid: number, opts: ExecOptions): Promise<void> {
    const p = this.killNow(host, conn, pid, opts).finally(() => conn.kills.delete(p));
    conn.kills.add(p);
    return p;
  }

  private async killNow(host: Host, conn: Conn, pid: number, opts: ExecOptions): Promise<void> {
    if (conn.dead) return;
    const sudo = this.sudoMode(this.sudoFor(opts));
    // With a password, the first kill's sudo reads it; the second (if any) finds stdin at its end and fails, which
    // only matters when the group kill failed too.
    const k = sudo.preamble
      ? `${sudo.prefix}/bin/sh -c 'kill -KILL -- -${pid} 2>/dev/null || kill -KILL ${pid} 2>/dev/null'`
      : `${sudo.prefix}kill -KILL -- -${pid} 2>/dev/null || ${sudo.prefix}kill -KILL ${pid} 2>/dev/null`;
    try {
      const ch = await this.channel(conn, `${k}; true`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, KILL_GRACE_MS);
        ch.on('close', () => (clearTimeout(t), res()));
        ch.resume();
        ch.stderr.resume();
        ch.end(sudo.preamble);
      });
    } catch (err) {
      this.env.log?.(host, `could not kill remote process group ${pid}: ${errMessage(err)}`);
    }
  }

  async exec(host: Host, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (this.isLocal(host)) return this.local.exec(host, command, opts);
    if (command.includes('\0')) throw new TransportError(`a command cannot contain a NUL byte: ${JSON.stringify(this.mask(command).slice(0, 80))}`, host.name);
    // The host's shell when it is free and fits (no stdin to feed, the transport's own sudo mode); else a session.
    if (opts.input === undefined && this.sudoFor(opts) === this.sudoOn && !opts.signal?.aborted && command.length < SHELL_MAX_COMMAND) {
      const shell = await this.freeShell(host);
      if (shell) {
        const r = await this.execInShell(host, shell.conn, shell.shell, command, opts);
        if (r) return r;
      }
    }
    return this.execChannel(host, command, opts);
  }

  /** The host's remote shell if it is idle (starting it on first use), else undefined. */
  private async freeShell(host: Host): Promise<{ conn: Conn; shell: RemoteShell } | undefined> {
    const conn = await this.connection(host);
    let starting = conn.shell;
    if (starting) {
      const sh = await starting.catch(() => undefined);
      if (sh && !sh.closed) return sh.tryClaim() ? { conn, shell: sh } : undefined;
      if (conn.shell !== starting) return this.freeShell(host); // another caller is starting a new one
    }
    const nonce = newNonce();
    const sudo = this.sudoMode(this.sudoOn);
    const driver = driverCommand(nonce, sudo.prefix, { login: this.opts.loginShell, preamble: !!sudo.preamble });
    starting = this.openChannel(host, driver).then(({ conn: c, ch }) => {
      if (c !== conn) {
        ch.close(); // the connection was replaced meanwhile: the next call starts a shell on the new one
        throw new Error('reconnected');
      }
      if (sudo.preamble) ch.write(sudo.preamble);
      return new RemoteShell(ch, nonce, (line) => this.env.log?.(host, this.mask(line)));
    });
    conn.shell = starting;
    const sh = await starting.catch(() => undefined);
    if (!sh) {
      if (conn.shell === starting) conn.shell = undefined;
      return undefined; // no shell: the command goes through its own session, which reports what is wrong
    }
    return sh.tryClaim() ? { conn, shell: sh } : undefined;
  }

  private envExports(opts: ExecOptions): string {
    const envs = Object.entries(opts.env ?? {}).map(([k, v]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new TransportError(`environment variable name ${JSON.stringify(k)} is not valid`);
      return `${k}=${v}`;
    });
    return envs.length ? `export ${quote(envs)}; ` : '';
  }

  /**
   * Runs the command in the host's remote shell. Undefined when the shell ended before the command started, on a
   * live connection: the caller then runs it in a session of its own.
   */
  private async execInShell(host: Host, conn: Conn, shell: RemoteShell, command: string, opts: ExecOptions): Promise<ExecResult | undefined> {
    const env = this.envExports(opts);
    let settle: ((r: ExecResult) => void) | undefined;
    const forced = new Promise<ExecResult>((res) => (settle = res));
    const stopper = new CommandStopper(
      opts,
      (pid) => void this.kill(host, conn, pid, opts),
      () => {
        shell.close();
        settle?.({
          code: null,
          signal: 'SIGKILL',
          timedOut: stopper.timedOut,
          stdout: '',
          stderr: `[graywave] the remote command did not confirm its end after a kill`,
        });
      },
    );
    const killed = (): ExecResult => ({ code: null, signal: 'SIGKILL', timedOut: stopper.timedOut, stdout: '', stderr: '' });
    try {
      const r = await Promise.race([shell.run(command, { onPid: (p) => stopper.started(p), onOutput: opts.onOutput }, env), forced]);
      if (!stopper.killing || r.code !== null) return r; // it ended on its own (possibly just before the kill)
      return { ...r, code: null, signal: r.signal ?? 'SIGKILL', timedOut: stopper.timedOut };
    } catch (err) {
      if (!(err instanceof ShellEnded)) throw err;
      if (stopper.killing) return killed();
      await new Promise((res) => setImmediate(res)); // let a connection drop that ended the shell be noticed first
      // The shell failed on a live connection before the command started (sudo refused, no bash): a session of its
      // own runs the command and reports the real error. After a connection loss the command may have started
      // (its start marker lost on the way): the host's record says whether it did. Only when it did not (the
      // connection was gone before the step began) does the command run once more, on a new connection; otherwise
      // running it again could do it twice, so the step fails.
      if (!err.started && (!conn.dead || !err.sent)) return undefined;
      if (!err.started && (await this.notStartedAfterDrop(host, shell, err.seq))) {
        if (stopper.killing || opts.signal?.aborted) return killed();
        return undefined;
      }
      throw new TransportError(
        conn.dead
          ? `${conn.where}: connection lost while the command ran; it may still be running there (a retry reconnects)`
          : `${conn.where}: the remote shell ended while the command ran (killed on the host?); it may still be running there`,
        host.name,
      );
    } finally {
      stopper.dispose();
    }
  }

  /**
   * After the connection dropped before a command's start marker came back: asks the host, on a new connection,
   * whether the shell had started command number `seq` (its driver records that before starting a command). True
   * only when the host says it had not; an unreachable host or no record counts as "may have started".
   */
  private async notStartedAfterDrop(host: Host, shell: RemoteShell, seq: number): Promise<boolean> {
    this.env.log?.(host, `ssh connection lost before the command's start was seen; reconnecting once to ask the host whether it started`);
    try {
      const r = await this.execChannel(host, startedQuery(shell.nonce), { timeoutMs: this.opts.connectTimeout + 10_000 });
      const n = /^n=(\d+)$/m.exec(r.stdout);
      const notStarted = r.code === 0 && !!n && Number(n[1]) < seq;
      this.env.log?.(
        host,
        notStarted
          ? `the command had not started: it runs on the new connection`
          : `the command may have started (${r.stdout.trim() || `exit ${r.code}`}): not run again`,
      );
      return notStarted;
    } catch (err) {
      this.env.log?.(host, `could not ask the host: ${errMessage(err)}`);
      return false;
    }
  }

  private async execChannel(host: Host, command: string, opts: ExecOptions): Promise<ExecResult> {
    const { remote, preamble } = this.wrap(command, opts);
    const { conn, ch } = await this.openChannel(host, remote);
    const sudo = this.sudoFor(opts);
    return new Promise<ExecResult>((resolveExec, rejectExec) => {
      let stdout = '';
      let stderr = '';
      let head = ''; // stderr until the PID line has been seen
      let pidPending = true;
      let settled = false;

      const err = (c: string) => {
        stderr = (stderr + c).slice(-KEEP);
        opts.onOutput?.(c, 'stderr');
      };
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        stopper.dispose();
        fn();
      };
      const stopper = new CommandStopper(
        opts,
        (pid) => void this.kill(host, conn, pid, opts),
        () => {
          ch.close();
          finish(() =>
            resolveExec({
              code: null,
              signal: 'SIGKILL',
              timedOut: stopper.timedOut,
              stdout,
              stderr: stderr + `\n[graywave] the remote command did not confirm its end after a kill`,
            }),
          );
        },
        () => exits.has(ch),
      );

      ch.setEncoding('utf8');
      ch.stderr.setEncoding('utf8');
      ch.on('data', (c: string) => {
        stdout = (stdout + c).slice(-KEEP);
        opts.onOutput?.(c, 'stdout');
      });
      ch.stderr.on('data', (c: string) => {
        if (!pidPending) return err(c);
        head += c;
        if (!head.startsWith(PID_MARK.slice(0, Math.min(head.length, PID_MARK.length)))) {
          pidPending = false; // no PID line: a shell we do not know; pass everything through
          return err(head);
        }
        const nl = head.indexOf('\n');
        if (nl < 0) return;
        pidPending = false;
        const pid = Number(head.slice(PID_MARK.length, nl));
        const rest = head.slice(nl + 1);
        if (rest) err(rest);
        if (pid) stopper.started(pid);
      });
      if (preamble !== undefined || opts.input !== undefined) ch.end((preamble ?? '') + (opts.input ?? ''));
      else ch.end();
      ch.on('close', () => {
        // Let a connection drop that caused this close be noticed first.
        setImmediate(() =>
          finish(() => {
            const exit = exits.get(ch);
            if (exit) {
              const hint = sudo && exit.code !== 0 ? sudoHint(stderr, this.sudoPassword !== undefined) : undefined;
              if (hint) err(`\n[graywave] ${hint}\n`);
              return resolveExec({ code: exit.code, signal: exit.signal, timedOut: stopper.timedOut, stdout, stderr });
            }
            if (stopper.killing) return resolveExec({ code: null, signal: 'SIGKILL', timedOut: stopper.timedOut, stdout, stderr });
            rejectExec(
              new TransportError(
                conn.dead
                  ? `${conn.where}: connection lost while the command ran; it may still be running there (a retry reconnects)`
                  : `${conn.where}: the command ended without an exit status`,
                host.name,
              ),
            );
          }),
        );
      });
    });
  }

  private sftp(_host: Host, conn: Conn): Promise<SFTPWrapper> {
    conn.sftp ??= new Promise<SFTPWrapper>((res, rej) => conn.client.sftp((err, s) => (err ? rej(err) : res(s))));
    conn.sftp.catch(() => (conn.sftp = undefined));
    return conn.sftp;
  }

  /** SFTP on this connection, or undefined when the host has no SFTP subsystem (remembered per connection). */
  private async sftpIfAny(host: Host, conn: Conn): Promise<SFTPWrapper | undefined> {
    if (conn.noSftp) return undefined;
    try {
      return await this.sftp(host, conn);
    } catch (err) {
      if (conn.dead) throw err;
      // A live connection that refuses the subsystem: a hardened sshd without `Subsystem sftp`.
      conn.noSftp = true;
      this.env.log?.(host, `no SFTP on this host (${errMessage(err)}): uploads stream over an exec channel, checked by SHA-256`);
      return undefined;
    }
  }

  /** The host's connection and its SFTP session (undefined: no SFTP subsystem); a dropped connection is reopened once. */
  private async sftpSession(host: Host): Promise<{ conn: Conn; sftp: SFTPWrapper | undefined }> {
    const conn = await this.connection(host);
    try {
      return { conn, sftp: await this.sftpIfAny(host, conn) };
    } catch {
      const again = await this.connection(host, true); // dropped since the last step: reopen once
      const sftp = await this.sftpIfAny(host, again).catch((err) => {
        throw new TransportError(`${again.where}: cannot start SFTP: ${errMessage(err)}`, host.name);
      });
      return { conn: again, sftp };
    }
  }

  /**
   * File operations over the connection's SFTP session (the one uploads use): no process on the host. Undefined
   * without an SFTP subsystem, without OpenSSH's posix-rename (an atomic replace), or with sudo in effect.
   */
  async files(host: Host, opts: { sudo?: boolean } = {}): Promise<RemoteFiles | undefined> {
    if (this.isLocal(host)) return this.local.files(host, opts);
    if (this.sudoFor(opts)) return undefined;
    const session = async () => {
      const { conn, sftp } = await this.sftpSession(host);
      if (!sftp) throw new TransportError(`${conn.where}: the SFTP subsystem is gone (reconnected to a host without one)`, host.name);
      return { sftp, where: conn.where };
    };
    const { sftp } = await this.sftpSession(host);
    const extensions = (sftp as unknown as { _extensions?: Record<string, string> } | undefined)?._extensions;
    return extensions?.['posix-rename@openssh.com'] === '1' ? new SftpFiles(session, host.name) : undefined;
  }

  async upload(host: Host, localPath: string, remotePath: string, opts: UploadOptions = {}): Promise<UploadResult | void> {
    if (this.isLocal(host)) return this.local.upload(host, localPath, remotePath);
    if (opts.signal?.aborted) throw new TransportError(`upload of ${localPath} to ${host.name} aborted`, host.name);
    const { conn, sftp } = await this.sftpSession(host);
    if (!sftp) return this.uploadExec(host, conn, localPath, remotePath, opts);
    const s = sftp;
    await new Promise<void>((res, rej) => {
      const onAbort = () => conn.client.end();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      // 64 KiB writes, 8 in flight (512 KiB). More in flight makes a fresh sshd grow its buffers by copying and
      // page faults: on a new connection 10 × 5 MB took 380–800 ms with 32 in flight, 120–200 ms with 8 (profiled:
      // sshd memmove + anonymous page faults). 512 KiB still fills a 20 ms-RTT link at 25 MB/s.
      s.fastPut(localPath, remotePath, { chunkSize: 64 * 1024, concurrency: 8 }, (err) => {
        opts.signal?.removeEventListener('abort', onAbort);
        if (err) rej(new TransportError(`${conn.where}: upload of ${localPath} to ${remotePath} failed: ${errMessage(err)}`, host.name));
        else res();
      });
    });
  }

  /**
   * Upload without SFTP: the file streams over an exec channel into a temp file next to `remotePath` (a POSIX sh
   * command, so any login shell runs it), the host checks its SHA-256, and only a file that matches is renamed into
   * place; anything else is removed. Written here because ssh2 offers SFTP or raw channels, nothing in between.
   */
  private async uploadExec(host: Host, conn: Conn, localPath: string, remotePath: string, opts: UploadOptions): Promise<UploadResult> {
    const sha = opts.sha256 ?? (await sha256OfFile(localPath));
    const part = `${remotePath}.graywave-part`;
    const fail = (why: string) => new TransportError(this.mask(`${conn.where}: upload of ${localPath} to ${remotePath} failed: ${why}`), host.name);
    // Exit 97: the checksum differs (the temp file is gone); otherwise cat's or mv's own status and message.
    // The stream reaches `cat` through sshd's 64 KiB pipe: two process wake-ups per 64 KiB, slow on a busy host.
    // Where perl is there (Debian's perl-base), the pipe is grown to 1 MiB first (F_SETPIPE_SZ = 1031 on Linux,
    // the unprivileged maximum by default): measured 0.4–0.6 s instead of 0.5–3.9 s per 5 MB on a loaded machine.
    const cmd =
      `perl -e 'fcntl(STDIN, 1031, 1048576)' 2>/dev/null; ` +
      `t=${quote([part])}; cat > "$t" || { r=$?; rm -f "$t"; exit $r; }; ` +
      `s=$(sha256sum "$t" 2>/dev/null || shasum -a 256 "$t") || { rm -f "$t"; exit 98; }; ` +
      `[ "\${s%% *}" = ${sha} ] || { rm -f "$t"; echo "host has \${s%% *}" >&2; exit 97; }; mv -f "$t" ${quote([remotePath])}`;
    let ch: ClientChannel;
    try {
      ch = await this.channel(conn, cmd);
    } catch (err) {
      throw fail(`cannot start a command: ${errMessage(err)}`);
    }
    let stderr = '';
    ch.stderr.setEncoding('utf8');
    ch.stderr.on('data', (c: string) => (stderr = (stderr + c).slice(-4096)));
    ch.resume();
    const file = createReadStream(localPath, { highWaterMark: 256 * 1024 });
    const onAbort = () => {
      file.destroy();
      ch.close();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await new Promise<void>((res, rej) => {
        file.on('error', (err) => {
          ch.close();
          rej(fail(`cannot read it: ${errMessage(err)}`));
        });
        file.pipe(ch);
        ch.on('close', () =>
          setImmediate(() => {
            const exit = exits.get(ch);
            if (opts.signal?.aborted) return rej(new TransportError(`upload of ${localPath} to ${host.name} aborted`, host.name));
            if (!exit) return rej(fail(conn.dead ? 'connection lost' : 'the command ended without an exit status'));
            if (exit.code === 0) return res();
            if (exit.code === 97) return rej(fail(`checksum mismatch (local ${sha.slice(0, 12)}, ${stderr.trim().slice(0, 30) || 'host: none'})`));
            if (exit.code === 98) return rej(fail(`the host has neither sha256sum nor shasum`));
            rej(fail(stderr.trim().split('\n').slice(-3).join('; ') || `exit ${exit.code ?? exit.signal}`));
          }),
        );
      });
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
    // The host hashed what it received and it matched: the caller need not hash it there again.
    return { checked: opts.sha256 !== undefined };
  }

  async release(host: Host): Promise<void> {
    const p = this.conns.get(host.name);
    if (!p) return;
    this.conns.delete(host.name);
    const c = await p.catch(() => undefined);
    if (!c) return;
    // Ended in the background (the remote shell's quit takes a round trip): the next host need not wait; close() does.
    const ending = this.end(c).finally(() => this.ending.delete(ending));
    this.ending.add(ending);
  }

  private async end(c: Conn): Promise<void> {
    await Promise.allSettled([...c.kills]);
    // The shell's quit goes out and is done (the driver removes its record on the host) before the connection ends.
    await (await c.shell?.catch(() => undefined))?.end(SHELL_QUIT_WAIT_MS);
    c.client.end();
  }

  async close(): Promise<void> {
    this.closed = true;
    const hosts = [...this.conns.values()];
    const jumps = [...this.jumps.values()];
    this.conns.clear();
    this.jumps.clear();
    // Hosts first: those behind a jump host end through its connection.
    await Promise.all([
      ...hosts.map((p) =>
        p.then(
          (c) => this.end(c),
          () => {},
        ),
      ),
      ...this.ending,
    ]);
    await Promise.all(
      jumps.map((p) =>
        p.then(
          (c) => this.end(c),
          () => {},
        ),
      ),
    );
  }
}
