import { createHash, createHmac } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { lookup as dnsLookup } from 'node:dns/promises';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { homedir, hostname, userInfo } from 'node:os';
import { isAbsolute, resolve } from 'node:path';

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
//
// Hand-written after OpenSSH's own readconf.c / match.c / ssh.c (9.2): the `ssh-config` package we used before
// treats `Host a,b` as a list and `?` loosely, ignores Include, and expands only some tokens, so it disagreed with
// `ssh -G` on real configs. What is read exactly as OpenSSH does: line tokenizing (quotes, `=`, `#` comments),
// keywords in any case, Host patterns (`*`, `?`, `!`; a comma is a literal character there, as in OpenSSH),
// Match host/originalhost/user/localuser/all/canonical/final (a `final` or `canonical` criterion makes a second
// pass over the files with the final host name, as ssh does), Include (relative to ~/.ssh, `~`, absolute, globs,
// nested, inside Host/Match blocks), first value wins, the `%` tokens and `~` of HostName, IdentityFile,
// UserKnownHostsFile, ProxyCommand and ProxyJump. `Match exec` is never run (reading a config must not run
// commands): the condition counts as false and a warning names its line. Directives that change the connection
// but that graywave does not implement are reported per host with their file:line (CONNECTION_CHANGING).

/** What we take from an OpenSSH client config for one host alias (only what the playbook may leave out). */
export interface SshConfigEntry {
  hostName?: string;
  user?: string;
  port?: number;
  identityFiles: string[];
  /** The hop list as `ssh -G` prints it (tokens not expanded, the last hop rebuilt from its parts); `none` → undefined. */
  proxyJump?: string;
  /** ProxyJump as OpenSSH uses it: the last hop, and the hops before it, tokens expanded. */
  jump?: JumpVia;
  /** The command with its tokens expanded (`exec` not prefixed); `none` → undefined. */
  proxyCommand?: string;
  /** UserKnownHostsFile (tokens and `~` expanded); undefined: not set (OpenSSH's default); [] for `none`. */
  userKnownHostsFiles?: string[];
  /** GlobalKnownHostsFile (`~` expanded, as OpenSSH does; no tokens); undefined: not set; [] for `none`. */
  globalKnownHostsFiles?: string[];
  /** HostKeyAlias (lower-cased, as ssh does): the name looked up in known_hosts instead of [host]:port. */
  hostKeyAlias?: string;
  /** Set when CanonicalizeHostname asks for a DNS canonicalisation OpenSSH would attempt (see canonicalName()). */
  canonicalize?: CanonicalizeRequest;
  /** Lines that apply to this host but are not (fully) honoured, each naming FILE:LINE. */
  warnings: string[];
}

export interface SshConfigOptions {
  /** The local user's home (passwd entry): `~` in IdentityFile & co. and %d. Default: os.userInfo().homedir. */
  home?: string;
  /** $HOME: where `Include`'s `~` (glob GLOB_TILDE) points. Default: the HOME variable, else `home`. */
  envHome?: string;
  /** The local user name (%u, `Match localuser`, default User). Default: os.userInfo().username. */
  localUser?: string;
  /** Check owner and mode of the file like OpenSSH does for ~/.ssh/config (not for `ssh -F FILE`). */
  checkPerm?: boolean;
}

/**
 * A problem in an ssh config file that OpenSSH would refuse too: a config error (exit 2) at FILE:LINE, built from
 * lines of the form `FILE:LINE: message` (or `FILE: message`).
 */
export class SshConfigError extends ConfigError {
  constructor(text: string) {
    super(
      text.split('\n').map((l) => {
        const m = /^(.*?):(\d+): (.*)$/s.exec(l) ?? /^(.*?)(): (.*)$/s.exec(l);
        return m ? { file: m[1]!, line: Number(m[2] || 1), col: 1, message: m[3]! } : { file: 'ssh config', line: 1, col: 1, message: l };
      }),
    );
    this.name = 'SshConfigError';
  }
}

interface ConfLine {
  file: string;
  line: number;
  /** The keyword as written (for messages) and lower-cased (for matching). */
  word: string;
  key: string;
  args: string[];
  /** The text after the keyword (and its `=`), as ProxyCommand / ProxyJump / Match read it. */
  rest: string;
  /** Include: the files it names, in glob order. */
  includes?: ConfFile[];
  /** Match: its criteria. */
  criteria?: Criterion[];
}

interface ConfFile {
  path: string;
  lines: ConfLine[];
}

/** Keywords OpenSSH 9.2 knows (lower case), plus a few newer ones, so that only really unknown ones are reported. */
const KNOWN = new Set(
  (
    'protocol cipher fallbacktorsh globalknownhostsfile2 rhostsauthentication userknownhostsfile2 useroaming usersh useprivilegedport ' +
    'afstokenpassing kerberosauthentication kerberostgtpassing rsaauthentication rhostsrsaauthentication compressionlevel ' +
    'gssapiauthentication gssapidelegatecredentials gssapikeyexchange gssapiclientidentity gssapiserveridentity gssapirenewalforcesrekey ' +
    'gssapitrustdns gssapikexalgorithms smartcarddevice pkcs11provider forwardagent exitonforwardfailure xauthlocation gatewayports ' +
    'passwordauthentication kbdinteractiveauthentication kbdinteractivedevices challengeresponseauthentication skeyauthentication ' +
    'tisauthentication pubkeyauthentication dsaauthentication hostbasedauthentication identityfile identityfile2 identitiesonly ' +
    'certificatefile addkeystoagent identityagent hostname hostkeyalias proxycommand port ciphers macs remoteforward localforward ' +
    'permitremoteopen user host match escapechar globalknownhostsfile userknownhostsfile connectionattempts batchmode checkhostip ' +
    'stricthostkeychecking compression tcpkeepalive keepalive numberofpasswordprompts syslogfacility loglevel logverbose dynamicforward ' +
    'preferredauthentications hostkeyalgorithms casignaturealgorithms bindaddress bindinterface clearallforwardings enablesshkeysign ' +
    'verifyhostkeydns nohostauthenticationforlocalhost rekeylimit connecttimeout addressfamily serveraliveinterval serveralivecountmax ' +
    'sendenv setenv controlpath controlmaster controlpersist hashknownhosts include tunnel tunneldevice localcommand permitlocalcommand ' +
    'remotecommand visualhostkey kexalgorithms ipqos requesttty sessiontype stdinnull forkafterauthentication proxyusefdpass ' +
    'canonicaldomains canonicalizefallbacklocal canonicalizehostname canonicalizemaxdots canonicalizepermittedcnames streamlocalbindmask ' +
    'streamlocalbindunlink revokedhostkeys fingerprinthash updatehostkeys hostbasedacceptedalgorithms hostbasedkeytypes ' +
    'pubkeyacceptedalgorithms pubkeyacceptedkeytypes ignoreunknown proxyjump securitykeyprovider knownhostscommand requiredrsasize ' +
    'enableescapecommandline obscurekeystroketiming channeltimeout tag refuseconnection versionaddendum warnweakcrypto'
  ).split(' '),
);

/**
 * Directives that change how (or whether) OpenSSH connects or authenticates, which graywave's SSH client does not
 * implement. A value listed after the name is harmless (the default or "off") and is not reported.
 */
const CONNECTION_CHANGING: Record<string, string[]> = {
  ciphers: [],
  macs: [],
  kexalgorithms: [],
  hostkeyalgorithms: [],
  pubkeyacceptedalgorithms: [],
  pubkeyacceptedkeytypes: [],
  hostbasedacceptedalgorithms: [],
  hostbasedkeytypes: [],
  casignaturealgorithms: [],
  requiredrsasize: [],
  knownhostscommand: [],
  revokedhostkeys: [],
  verifyhostkeydns: ['no'],
  stricthostkeychecking: [],
  checkhostip: ['no'],
  identityagent: [],
  identitiesonly: ['no'],
  pkcs11provider: ['none'],
  securitykeyprovider: ['internal'],
  preferredauthentications: [],
  pubkeyauthentication: ['yes', 'true'],
  hostbasedauthentication: ['no'],
  gssapiauthentication: ['no'],
  addressfamily: ['any'],
  bindaddress: [],
  bindinterface: [],
  canonicalizepermittedcnames: ['none'],
  connecttimeout: [],
  proxyusefdpass: ['no'],
  remotecommand: ['none'],
  requesttty: ['no', 'auto'],
  sessiontype: ['default'],
  setenv: [],
  sendenv: [],
  forwardagent: ['no'],
  permitlocalcommand: ['no'],
  localcommand: [],
};

const WS = ' \t\r\n';

/**
 * OpenSSH's strdelim(): the next word of `s`, split at whitespace or one `=`, honouring double quotes.
 * Returns the word and the remaining text (undefined when exhausted or on an unmatched quote).
 */
function strdelim(s: string | undefined): { word: string | undefined; rest: string | undefined } {
  if (s === undefined) return { word: undefined, rest: undefined };
  const m = /[ \t\r\n"=]/.exec(s);
  if (!m) return { word: s, rest: undefined };
  const i = m.index;
  if (s[i] === '"') {
    const body = s.slice(0, i) + s.slice(i + 1);
    const q = body.indexOf('"', i);
    if (q < 0) return { word: undefined, rest: undefined };
    let j = q + 1;
    while (j < body.length && WS.includes(body[j]!)) j++;
    return { word: body.slice(0, q), rest: body.slice(j) };
  }
  const word = s.slice(0, i);
  const wspace = s[i] === '=';
  let j = i + 1;
  while (j < s.length && WS.includes(s[j]!)) j++;
  if (s[j] === '=' && !wspace) {
    j++;
    while (j < s.length && WS.includes(s[j]!)) j++;
  }
  return { word, rest: s.slice(j) };
}

/** OpenSSH's argv_split(s, terminate_on_comment=1): quotes, `\` escapes, `#` starts a comment between words. */
function argvSplit(s: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    if (s[i] === ' ' || s[i] === '\t') {
      i++;
      continue;
    }
    if (s[i] === '#') break;
    let quote = '';
    let arg = '';
    for (; i < s.length; i++) {
      const c = s[i]!;
      if (c === '\\') {
        const n = s[i + 1];
        if (n === "'" || n === '"' || n === '\\' || (quote === '' && n === ' ')) {
          i++;
          arg += n;
        } else arg += c;
      } else if (quote === '' && (c === ' ' || c === '\t')) break;
      else if (quote === '' && (c === '"' || c === "'")) quote = c;
      else if (quote !== '' && c === quote) quote = '';
      else arg += c;
    }
    if (i >= s.length && quote !== '') return undefined;
    out.push(arg);
  }
  return out;
}

/** OpenSSH's match_pattern(): `*` and `?` wildcards, case-sensitive, the whole string. */
export function sshMatchPattern(s: string, pattern: string): boolean {
  let si = 0;
  let pi = 0;
  let star = -1;
  let mark = 0;
  while (si < s.length) {
    if (pi < pattern.length && (pattern[pi] === '?' || pattern[pi] === s[si])) {
      si++;
      pi++;
    } else if (pi < pattern.length && pattern[pi] === '*') {
      star = pi++;
      mark = si;
    } else if (star >= 0) {
      pi = star + 1;
      si = ++mark;
    } else return false;
  }
  while (pi < pattern.length && pattern[pi] === '*') pi++;
  return pi === pattern.length;
}

/** OpenSSH's match_pattern_list(): comma-separated, `!` negates; 1 positive, -1 negated match, 0 none. */
function matchPatternList(s: string, list: string, lower: boolean): -1 | 0 | 1 {
  let positive = false;
  for (let sub of list.split(',')) {
    const neg = sub.startsWith('!');
    if (neg) sub = sub.slice(1);
    if (lower) sub = sub.toLowerCase();
    if (sshMatchPattern(s, sub)) {
      if (neg) return -1;
      positive = true;
    }
  }
  return positive ? 1 : 0;
}

/** OpenSSH's percent_expand() (with `${VAR}` from the environment when `dollar`): an unknown `%x` is an error. */
function percentExpand(s: string, tokens: Record<string, string>, where: string, dollar = false): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (dollar && c === '$' && s[i + 1] === '{') {
      const end = s.indexOf('}', i + 2);
      if (end < 0) throw new SshConfigError(`${where}: invalid environment variable expansion in "${s}"`);
      const name = s.slice(i + 2, end);
      const v = process.env[name];
      if (!/^[A-Za-z0-9_]+$/.test(name) || v === undefined) throw new SshConfigError(`${where}: environment variable ${name} in "${s}" is not set`);
      out += v;
      i = end;
    } else if (c === '%') {
      const t = s[i + 1];
      if (t === undefined) throw new SshConfigError(`${where}: "${s}" ends with a lone %`);
      if (t === '%') out += '%';
      else if (t in tokens) out += tokens[t];
      else throw new SshConfigError(`${where}: unknown token %${t} in "${s}" (OpenSSH refuses it too)`);
      i++;
    } else out += c;
  }
  return out;
}

/** A home directory from /etc/passwd, for `~user/`. */
function passwdHome(user: string): string | undefined {
  const text = readOptional('/etc/passwd') ?? '';
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === user && f[5]) return f[5];
  }
  return undefined;
}

/** OpenSSH's tilde_expand_filename(): `~` and `~/x` → the passwd home, `~user/x` → that user's home. */
function tildeExpand(path: string, home: string, where: string): string {
  if (!path.startsWith('~')) return path;
  const slash = path.indexOf('/');
  const user = path.slice(1, slash < 0 ? undefined : slash);
  const base = user === '' ? home : passwdHome(user);
  if (base === undefined) throw new SshConfigError(`${where}: no such user ${user} in "${path}"`);
  return slash < 0 ? base : base.replace(/\/+$/, '') + path.slice(slash);
}

/** Port numbers and /etc/services names, as OpenSSH's a2port(); -1 when neither. */
function a2port(s: string): number {
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    return n <= 65535 ? n : -1;
  }
  const services = readOptional('/etc/services') ?? '';
  const m = new RegExp(`^(\\S+)\\s+(\\d+)/tcp(.*)$`, 'gm');
  for (let r = m.exec(services); r; r = m.exec(services)) {
    const aliases = r[3]!.split('#')[0]!.trim().split(/\s+/);
    if (r[1] === s || aliases.includes(s)) return Number(r[2]);
  }
  return -1;
}

/** One hop of a ProxyJump list, as OpenSSH's parse_ssh_uri() / parse_user_host_port() read it. */
export interface JumpHop {
  user?: string;
  host: string;
  port?: number;
}

/** OpenSSH's valid_domain() (the host of an ssh:// URI). */
function validDomain(name: string): boolean {
  if (name === '' || !/^[A-Za-z0-9]/.test(name)) return false;
  return !name.includes('..') && /^[A-Za-z0-9._-]+$/.test(name);
}

/** OpenSSH's hpdelim2(): the host part (`[v6]` kept) and what follows its `:` or `/`; undefined when malformed. */
function hpdelim(s: string): { host: string; rest?: string; delim?: string } | undefined {
  let i: number;
  if (s.startsWith('[')) {
    i = s.indexOf(']');
    if (i < 0) return undefined;
    i++;
  } else {
    const m = /[:/]/.exec(s);
    i = m ? m.index : s.length;
  }
  if (i === s.length) return { host: s };
  if (s[i] !== ':' && s[i] !== '/') return undefined;
  return { host: s.slice(0, i), rest: s.slice(i + 1), delim: s[i] };
}

const cleanHost = (h: string) => (h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h);

/**
 * One hop `[user@]host[:port]` or `ssh://[user@]host[:port][/]`, exactly as OpenSSH 9.2 parses a ProxyJump hop
 * (parse_ssh_uri, then parse_user_host_port); undefined when OpenSSH refuses it.
 */
export function parseJumpHop(hop: string): JumpHop | undefined {
  if (hop.startsWith('ssh://')) {
    let t = hop.slice(6);
    let user: string | undefined;
    const at = t.indexOf('@');
    if (at >= 0) {
      user = t.slice(0, at).split(';')[0]!;
      if (user === '') return undefined;
      try {
        user = decodeURIComponent(user.replace(/\+/g, ' '));
      } catch {
        return undefined;
      }
      t = t.slice(at + 1);
    }
    const d = hpdelim(t);
    if (!d || d.host === '') return undefined;
    const host = cleanHost(d.host);
    if (!validDomain(host)) return undefined;
    let port: number | undefined;
    let rest = d.rest;
    if (rest !== undefined && rest !== '' && d.delim === ':') {
      const slash = rest.indexOf('/');
      port = a2port(slash < 0 ? rest : rest.slice(0, slash));
      if (port <= 0) return undefined;
      rest = slash < 0 ? undefined : rest.slice(slash + 1);
    }
    if (rest !== undefined && rest !== '') return undefined; // a path is not allowed
    return { user, host, port };
  }
  let t = hop;
  let user: string | undefined;
  const at = t.lastIndexOf('@');
  if (at >= 0) {
    if (at === 0) return undefined;
    user = t.slice(0, at);
    t = t.slice(at + 1);
  }
  const d = hpdelim(t);
  if (!d || d.delim === '/' || d.host === '') return undefined;
  let port: number | undefined;
  if (d.rest !== undefined && d.rest !== '') {
    port = a2port(d.rest);
    if (port <= 0) return undefined;
  }
  return { user, host: cleanHost(d.host), port };
}

/** A ProxyJump value without its comment and trailing blanks (parse_jump's `orig`). */
function jumpSpec(rest: string): string {
  return rest.split('#')[0]!.replace(/[ \t\r\n]+$/, '');
}

/** Whether OpenSSH accepts a ProxyJump value (`none`, or every hop parses). */
export function validJump(spec: string): boolean {
  return spec.toLowerCase() === 'none' || spec.split(',').every((hop) => parseJumpHop(hop) !== undefined);
}

/**
 * ssh.c's implicit ProxyCommand for a ProxyJump (`-l`, `-p`, `-J` and the host of its last hop), with the `%`
 * tokens of the host being reached expanded in it as expand_proxy_command() expands the whole command.
 */
function jumpVia(spec: string, tokens: Record<string, string>, where: string): JumpVia {
  if (!validJump(spec)) {
    // A playbook's jumpHost has no line of an ssh config to name.
    if (where === 'jumpHost') throw new Error(`jumpHost "${spec}" is not OpenSSH's [user@]host[:port] (or ssh://[user@]host[:port]), comma-separated`);
    throw new SshConfigError(`${where}: invalid ProxyJump "${spec}"`);
  }
  const comma = spec.lastIndexOf(',');
  const hop = parseJumpHop(spec.slice(comma + 1))!;
  const x = (v: string) => percentExpand(v, tokens, where);
  const via: JumpVia = { host: x(hop.host) };
  if (hop.user !== undefined) via.user = x(hop.user);
  if (hop.port !== undefined) via.port = hop.port;
  if (comma > 0) via.extra = x(spec.slice(0, comma));
  return via;
}

/**
 * ssh.c's check before it builds the implicit ProxyCommand: a ProxyJump whose last hop is the host itself (same
 * name, port and user) is refused ("jumphost loop via HOST") instead of starting ssh after ssh.
 */
export function jumpLoop(e: SshConfigEntry, alias: string, localUser: string = userInfo().username): boolean {
  if (!e.jump) return false;
  const host = e.hostName ?? (isIP(alias) ? alias : alias.toLowerCase());
  const user = e.user ?? localUser;
  return e.jump.host === host && (e.jump.port ?? 22) === (e.port ?? 22) && (e.jump.user ?? user) === user;
}

/** A ProxyJump as `ssh -G` prints it: rebuilt from what it parsed (an ssh:// URI as user@host:port, [v6]). */
function jumpShown(spec: string): string {
  const comma = spec.lastIndexOf(',');
  const hop = parseJumpHop(spec.slice(comma + 1))!;
  const numeric = hop.host.includes(':') || /^[0-9.]*$/.test(hop.host);
  return `${comma > 0 ? spec.slice(0, comma) + ',' : ''}${hop.user !== undefined ? hop.user + '@' : ''}${numeric ? `[${hop.host}]` : hop.host}${hop.port !== undefined ? ':' + hop.port : ''}`;
}

/** Whether the system resolver (getaddrinfo, as ssh's resolve_host) knows a name. */
async function resolves(name: string): Promise<boolean> {
  try {
    await dnsLookup(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * OpenSSH's resolve_canonicalize() for a name lookup() flagged: a name ending in `.` is tried as it is, a name
 * with at most CanonicalizeMaxDots dots is tried with each of CanonicalDomains appended (`name.domain.`); the
 * first that resolves is the canonical name. Undefined when the name stays as it is; an error when nothing
 * resolved and CanonicalizeFallbackLocal is no (ssh stops there too). CNAMEs are not followed
 * (CanonicalizePermittedCNAMEs is reported instead).
 */
export async function canonicalName(req: CanonicalizeRequest, resolve: (name: string) => Promise<boolean> = resolves): Promise<string | undefined> {
  const h = req.host;
  if (h.endsWith('.')) {
    if (await resolve(h)) return h.slice(0, -1);
  } else {
    if ((h.match(/\./g) ?? []).length > req.maxDots) return undefined;
    for (const d of req.domains) {
      if (d.toLowerCase() === 'none') break;
      if (await resolve(`${h}.${d}.`)) return `${h}.${d}`;
    }
  }
  if (!req.fallbackLocal) {
    throw new Error(`could not resolve host "${h}" with CanonicalDomains ${req.domains.join(' ') || '(none)'} and CanonicalizeFallbackLocal no (${req.where})`);
  }
  return undefined;
}

/** glob(3) with GLOB_TILDE as Include uses it: `*`, `?`, `[...]` per path component, sorted, no hidden files. */
function globFiles(pattern: string, envHome: string): string[] {
  let p = pattern;
  if (p === '~' || p.startsWith('~/')) p = envHome.replace(/\/+$/, '') + p.slice(1);
  else if (p.startsWith('~')) {
    const slash = p.indexOf('/');
    const home = passwdHome(p.slice(1, slash < 0 ? undefined : slash));
    if (home === undefined) return [];
    p = home + (slash < 0 ? '' : p.slice(slash));
  }
  const magic = /[*?[]/;
  const parts = p.split('/');
  let bases = [p.startsWith('/') ? '/' : '.'];
  for (const [i, part] of parts.entries()) {
    if (part === '' && i === 0) continue;
    if (part === '') continue;
    const next: string[] = [];
    for (const base of bases) {
      if (!magic.test(part)) {
        next.push(base === '.' && !p.startsWith('.') ? part : resolve(base, part));
        continue;
      }
      let names: string[];
      try {
        names = readdirSync(base);
      } catch {
        continue;
      }
      const re = globRegExp(part);
      for (const n of names.sort()) if (re.test(n) && (!n.startsWith('.') || part.startsWith('.'))) next.push(resolve(base, n));
    }
    bases = next;
  }
  return bases.filter((f) => {
    try {
      statSync(f);
      return true;
    } catch {
      return false;
    }
  });
}

function globRegExp(part: string): RegExp {
  let re = '';
  for (let i = 0; i < part.length; i++) {
    const c = part[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = part.indexOf(']', i + 2);
      if (close < 0) re += '\\[';
      else {
        let body = part.slice(i + 1, close);
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += '[' + body.replace(/\\/g, '\\\\') + ']';
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp('^' + re + '$');
}

/** Everything OpenSSH keeps while reading the files for one host (first value wins). */
interface Options {
  hostname?: string;
  user?: string;
  port?: number;
  identityFiles: { path: string; where: string }[];
  certificateFiles: { path: string; where: string }[];
  userKnownHostsFiles?: { files: string[]; where: string };
  globalKnownHostsFiles?: { files: string[]; where: string };
  hostKeyAlias?: string;
  jumpHost?: string;
  proxyCommand?: { cmd: string; where: string };
  canonicalize?: string;
  canonicalizeWhere?: string;
  jumpWhere?: string;
  canonicalDomains?: string[];
  canonicalizeMaxDots?: number;
  canonicalizeFallbackLocal?: string;
  ignoreUnknown?: string;
  /** The host name after the final pass (already expanded and lower-cased). */
  finalName?: string;
  warned: Set<string>;
  warnings: string[];
}

/**
 * What `ssh` gets on its command line, which wins over every config file (first value wins): `-l USER`, `-p PORT`,
 * `-J HOPS` (then the config's ProxyJump and ProxyCommand are ignored). graywave passes a playbook's or host's own
 * user, port and jumpHost this way, and a jump host gets what OpenSSH's implicit ProxyCommand gives it.
 */
export interface SshCommandLine {
  user?: string;
  port?: number;
  jump?: string;
}

/** Hostname canonicalisation OpenSSH would try for this host (CanonicalizeHostname yes/always). */
export interface CanonicalizeRequest {
  /** The name to canonicalise (HostName applied, lower-cased). */
  host: string;
  domains: string[];
  maxDots: number;
  fallbackLocal: boolean;
  /** Where CanonicalizeHostname was set, for messages. */
  where: string;
}

/**
 * The implicit ProxyCommand OpenSSH builds from ProxyJump (`ssh [-l USER] [-p PORT] [-J EXTRA] -W '[%h]:%p' HOST`),
 * with the `%` tokens of the host being reached expanded: the jump host is reached by an ssh of its own, given
 * these as its command line.
 */
export interface JumpVia {
  host: string;
  user?: string;
  port?: number;
  /** The hops before the last one (passed on as that ssh's `-J`). */
  extra?: string;
}

/**
 * The user's OpenSSH client config (see the notes above). Files are read and checked once, by load/parse; each
 * lookup then replays them for one host, as ssh does.
 */
export class SshClientConfig {
  private constructor(
    private readonly root: ConfFile | undefined,
    private readonly opts: Required<Omit<SshConfigOptions, 'checkPerm'>>,
  ) {}

  private static options(o: SshConfigOptions): Required<Omit<SshConfigOptions, 'checkPerm'>> {
    const info = userInfo();
    const home = o.home ?? info.homedir;
    return { home, envHome: o.envHome ?? process.env.HOME ?? home, localUser: o.localUser ?? info.username };
  }

  static empty(): SshClientConfig {
    return new SshClientConfig(undefined, SshClientConfig.options({}));
  }

  /** Parses config text (Include paths are read from disk). `file` names it in messages. */
  static parse(text: string, opts: SshConfigOptions & { file?: string } = {}): SshClientConfig {
    const o = SshClientConfig.options(opts);
    const cache = new Map<string, ConfFile>();
    return new SshClientConfig(readConf(opts.file ?? 'ssh config', text, o, cache, 0), o);
  }

  /**
   * Reads the file; a missing file is an empty config. Without `file`, ~/.ssh/config of the local user (whose
   * owner and mode are checked like OpenSSH does). A config OpenSSH would refuse is an error naming FILE:LINE.
   */
  static load(file?: string, opts: SshConfigOptions = {}): SshClientConfig {
    const o = SshClientConfig.options(opts);
    const path = file ?? resolve(o.home, '.ssh', 'config');
    const text = readOptional(path);
    if (text === undefined) return new SshClientConfig(undefined, o);
    if (opts.checkPerm ?? file === undefined) checkPerm(path);
    return new SshClientConfig(readConf(path, text, o, new Map(), 0), o);
  }

  /**
   * The settings OpenSSH would use for `ssh [-l USER] [-p PORT] [-J HOPS] <alias>` (`ssh -G`), tokens and `~`
   * expanded. Without DNS: when CanonicalizeHostname asks for a canonicalisation, `canonicalize` says so and the
   * final pass uses the name as it is; `canonicalHost` (from canonicalName()) is the name that pass uses instead.
   */
  lookup(alias: string, cli: SshCommandLine = {}, canonicalHost?: string): SshConfigEntry {
    const o: Options = { identityFiles: [], certificateFiles: [], warned: new Set(), warnings: [], user: cli.user, port: cli.port };
    if (cli.jump !== undefined) {
      o.jumpHost = cli.jump;
      o.jumpWhere = 'jumpHost';
      o.proxyCommand = { cmd: 'none', where: 'command line' };
    }
    let canonicalize: CanonicalizeRequest | undefined;
    if (this.root) {
      const state = { wantFinal: false };
      this.pass(o, alias, alias, false, state);
      const canon = o.canonicalize?.toLowerCase();
      if (canon !== undefined && !['no', 'false'].includes(canon)) {
        const name = finalHost(o, alias);
        // resolve_canonicalize(): not for addresses, nor for names a proxy will resolve unless `always`.
        const direct = (o.proxyCommand === undefined || o.proxyCommand.cmd.toLowerCase() === 'none') && o.jumpHost === undefined;
        // is_addr_fast(): an address (or what looks like one) is not canonicalised.
        if (!isIP(name) && !/[%:]/.test(name) && !/^[0-9.]*$/.test(name) && (direct || canon === 'always')) {
          canonicalize = {
            host: name,
            domains: o.canonicalDomains ?? [],
            maxDots: o.canonicalizeMaxDots ?? 1,
            fallbackLocal: !['no', 'false'].includes((o.canonicalizeFallbackLocal ?? 'yes').toLowerCase()),
            where: o.canonicalizeWhere ?? 'CanonicalizeHostname',
          };
        }
        state.wantFinal = true;
      }
      if (state.wantFinal) {
        const h = canonicalHost ?? finalHost(o, alias);
        o.hostname = o.finalName = h;
        this.pass(o, h, alias, true, state);
      }
    }
    const host = o.finalName ?? finalHost(o, alias);
    const user = o.user ?? this.opts.localUser;
    const port = o.port ?? 22;
    const keyAlias = o.hostKeyAlias?.toLowerCase();
    const uid = String(userInfo().uid);
    const thisHost = hostname();
    const fileTokens: Record<string, string> = {
      C: createHash('sha1')
        .update(thisHost + host + String(port) + user)
        .digest('hex'),
      L: thisHost.split('.')[0]!,
      i: uid,
      k: keyAlias ?? alias,
      l: thisHost,
      n: alias,
      p: String(port),
      d: this.opts.home,
      h: host,
      r: user,
      u: this.opts.localUser,
    };
    const pathOf = (f: string, where: string) => percentExpand(tildeExpand(f, this.opts.home, where), fileTokens, where, true);
    // sshconnect.c expand_proxy_command(): also what the implicit ProxyCommand of a ProxyJump is expanded with.
    const proxyTokens = { h: host, k: keyAlias ?? alias, n: alias, p: String(port), r: user };
    const known = (k: { files: string[]; where: string } | undefined, expand: (f: string, where: string) => string) =>
      k === undefined ? undefined : k.files[0]?.toLowerCase() === 'none' ? [] : k.files.map((f) => expand(f, k.where));
    const jumpRaw = o.jumpHost !== undefined && o.jumpHost.toLowerCase() !== 'none' ? o.jumpHost : undefined;
    const entry: SshConfigEntry = {
      hostName: o.hostname === undefined ? undefined : host,
      user: o.user,
      port: o.port,
      identityFiles: o.identityFiles.filter((f) => f.path.toLowerCase() !== 'none').map((f) => pathOf(f.path, f.where)),
      proxyJump: jumpRaw === undefined || !validJump(jumpRaw) ? jumpRaw : jumpShown(jumpRaw),
      proxyCommand:
        o.proxyCommand && o.proxyCommand.cmd.toLowerCase() !== 'none' ? percentExpand(o.proxyCommand.cmd, proxyTokens, o.proxyCommand.where) : undefined,
      userKnownHostsFiles: known(o.userKnownHostsFiles, pathOf),
      globalKnownHostsFiles: known(o.globalKnownHostsFiles, (f, where) => tildeExpand(f, this.opts.home, where)),
      hostKeyAlias: keyAlias,
      canonicalize,
      warnings: o.warnings,
    };
    if (jumpRaw !== undefined) entry.jump = jumpVia(jumpRaw, proxyTokens, o.jumpWhere ?? 'ProxyJump');
    if (entry.hostKeyAlias === undefined) delete entry.hostKeyAlias;
    if (entry.canonicalize === undefined) delete entry.canonicalize;
    if (entry.globalKnownHostsFiles === undefined) delete entry.globalKnownHostsFiles;
    if (entry.userKnownHostsFiles === undefined) delete entry.userKnownHostsFiles;
    return entry;
  }

  /** One pass over the files for `host` (`final`: the second pass that `Match final` asks for). */
  private pass(o: Options, host: string, original: string, final: boolean, state: { wantFinal: boolean }): void {
    const active = { on: true };
    this.walk(this.root!, o, host, original, final, state, active, false);
  }

  private walk(
    file: ConfFile,
    o: Options,
    host: string,
    original: string,
    final: boolean,
    state: { wantFinal: boolean },
    active: { on: boolean },
    never: boolean,
  ): void {
    for (const l of file.lines) {
      const where = `${l.file}:${l.line}`;
      switch (l.key) {
        case 'host': {
          active.on = false;
          if (never) break;
          for (const arg of l.args) {
            const neg = arg.startsWith('!');
            if (sshMatchPattern(host, neg ? arg.slice(1) : arg)) {
              if (neg) {
                active.on = false;
                break;
              }
              active.on = true;
            }
          }
          break;
        }
        case 'match': {
          const v = this.matchLine(l, o, host, original, final, state);
          active.on = never ? false : v;
          break;
        }
        case 'include': {
          const outer = active.on;
          for (const inc of l.includes ?? []) {
            this.walk(inc, o, host, original, final, state, active, never || !outer);
            active.on = outer;
          }
          break;
        }
        default:
          if (active.on) this.apply(l, o, where);
      }
    }
  }

  private apply(l: ConfLine, o: Options, where: string): void {
    const first = l.args[0]!;
    switch (l.key) {
      case 'hostname':
        o.hostname ??= first;
        return;
      case 'user':
        o.user ??= first;
        return;
      case 'port':
        o.port ??= a2port(first);
        return;
      case 'identityfile':
      case 'identityfile2':
        if (!o.identityFiles.some((f) => f.path === first)) o.identityFiles.push({ path: first, where });
        return;
      case 'userknownhostsfile':
        o.userKnownHostsFiles ??= { files: l.args, where };
        return;
      case 'globalknownhostsfile':
        o.globalKnownHostsFiles ??= { files: l.args, where };
        return;
      case 'hostkeyalias':
        o.hostKeyAlias ??= first;
        return;
      case 'certificatefile':
        // ssh2 (graywave's SSH client) cannot sign with an OpenSSH certificate: its publickey request names the
        // certificate type inside the signature too, which sshd refuses (a certificate signature must name the plain
        // key type), and it has no certificate key type at all.
        if (first.toLowerCase() === 'none' || o.certificateFiles.some((f) => f.path === first)) return;
        o.certificateFiles.push({ path: first, where });
        o.warnings.push(
          `${where}: CertificateFile ${first}: graywave's SSH client (ssh2) cannot authenticate with OpenSSH certificates; it offers the plain ` +
            `keys only (IdentityFile, transport.identityFile or the agent), so this host must accept the key itself (authorized_keys), not only its certificate`,
        );
        return;
      case 'canonicaldomains':
        o.canonicalDomains ??= l.args;
        return;
      case 'canonicalizemaxdots':
        o.canonicalizeMaxDots ??= Number(first);
        return;
      case 'canonicalizefallbacklocal':
        o.canonicalizeFallbackLocal ??= first;
        return;
      case 'proxycommand':
        if (o.jumpHost === undefined) o.proxyCommand ??= { cmd: l.rest, where };
        return;
      case 'proxyjump': {
        if (o.proxyCommand !== undefined || o.jumpHost !== undefined) return;
        const spec = jumpSpec(l.rest);
        o.jumpHost = spec;
        o.jumpWhere = where;
        if (spec.toLowerCase() !== 'none') o.proxyCommand = { cmd: 'none', where };
        return;
      }
      case 'ignoreunknown':
        o.ignoreUnknown ??= first;
        return;
      case 'canonicalizehostname':
        if (o.canonicalize === undefined) {
          o.canonicalize = first;
          o.canonicalizeWhere = where;
        }
        return;
    }
    if (o.warned.has(l.key)) return;
    o.warned.add(l.key);
    if (!KNOWN.has(l.key)) {
      if (o.ignoreUnknown !== undefined && matchPatternList(l.key, o.ignoreUnknown, true) === 1) return;
      o.warnings.push(`${where}: unknown ssh_config keyword ${l.word} (OpenSSH 9.2 refuses it); graywave ignores it`);
      return;
    }
    const harmless = CONNECTION_CHANGING[l.key];
    if (harmless && !harmless.includes(first.toLowerCase())) {
      o.warnings.push(`${where}: ${l.word} ${l.args.join(' ')} changes how OpenSSH connects, but graywave does not implement it and ignores it for this host`);
    }
  }

  /** OpenSSH's match_cfg_line(). */
  private matchLine(l: ConfLine, o: Options, hostArg: string, original: string, final: boolean, state: { wantFinal: boolean }): boolean {
    const where = `${l.file}:${l.line}`;
    const user = o.user ?? this.opts.localUser;
    const host = final ? (o.hostname ?? hostArg) : o.hostname !== undefined ? percentExpand(o.hostname, { h: hostArg }, where) : hostArg;
    let result = true;
    for (const { neg, attr, arg } of l.criteria!) {
      if (attr === 'all') return result && !neg;
      if (attr === 'canonical' || attr === 'final') {
        if (attr === 'final') state.wantFinal = true;
        if (final === neg) result = false;
        continue;
      }
      let r: boolean;
      if (attr === 'host') r = matchPatternList(host.toLowerCase(), arg!, true) === 1;
      else if (attr === 'originalhost') r = matchPatternList(original.toLowerCase(), arg!, true) === 1;
      else if (attr === 'user') r = matchPatternList(user, arg!, false) === 1;
      else if (attr === 'localuser') r = matchPatternList(this.opts.localUser, arg!, false) === 1;
      else {
        // exec: never run. Only reported when OpenSSH would run it (all criteria before it matched).
        if (result && !o.warned.has(`exec ${where}`)) {
          o.warned.add(`exec ${where}`);
          o.warnings.push(`${where}: Match exec ${JSON.stringify(arg)} is not supported: graywave never runs it and counts the condition as false`);
        }
        r = neg;
      }
      if (r === neg) result = false;
    }
    return result;
  }
}

/**
 * Problems OpenSSH would refuse in the client config the ssh transport will read (`configFile`: a file, false for
 * none, default ~/.ssh/config), including token errors of these hosts' entries and of the jump hosts on their way
 * (looked up with each host's own command line: user, port, jumpHost): for `validate`, before anything runs.
 */
export function sshConfigIssues(configFile: string | false | undefined, dir: string, targets: { address: string; cli?: SshCommandLine }[]): ConfigIssue[] {
  if (configFile === false) return [];
  let cfg: SshClientConfig;
  try {
    cfg = SshClientConfig.load(configFile ? expandPath(configFile, dir) : undefined);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    return [
      {
        file: configFile || resolve(userInfo().homedir, '.ssh', 'config'),
        line: 1,
        col: 1,
        message: `cannot read the ssh client config: ${(err as Error).message}`,
      },
    ];
  }
  const issues = new Map<string, ConfigIssue>();
  const walk = (alias: string, cli: SshCommandLine, depth: number): void => {
    if (depth > 16) return; // the transport reports such a loop for the host
    const e = cfg.lookup(alias, cli);
    if (e.jump && !jumpLoop(e, alias)) walk(e.jump.host, { user: e.jump.user, port: e.jump.port, jump: e.jump.extra }, depth + 1);
  };
  for (const t of targets) {
    if (t.address === 'local' || t.address === 'localhost') continue;
    try {
      walk(t.address, t.cli ?? {}, 0);
    } catch (err) {
      // Errors of the config file; anything else (a host's own jumpHost) is the transport's to report for that host.
      if (err instanceof ConfigError) for (const i of err.issues) issues.set(`${i.file}:${i.line}:${i.message}`, i);
    }
  }
  return [...issues.values()];
}

/** The host name ssh connects to: HostName with %h, lower-cased unless it is an address. */
function finalHost(o: Options, alias: string): string {
  const h = o.hostname !== undefined ? percentExpand(o.hostname, { h: alias }, 'HostName') : alias;
  return isIP(h) ? h : h.toLowerCase();
}

function checkPerm(path: string): void {
  const st = statSync(path);
  const uid = userInfo().uid;
  if ((st.uid !== 0 && st.uid !== uid) || (st.mode & 0o022) !== 0) {
    throw new SshConfigError(
      `${path}: bad owner or permissions (OpenSSH refuses it too): it must belong to you or root and not be writable by group or others (chmod go-w ${path})`,
    );
  }
}

const MAX_INCLUDE_DEPTH = 16;

/** Reads one file into lines, following Include, and checks what OpenSSH checks whatever the host. */
function readConf(file: string, text: string, o: Required<Omit<SshConfigOptions, 'checkPerm'>>, cache: Map<string, ConfFile>, depth: number): ConfFile {
  if (depth > MAX_INCLUDE_DEPTH) throw new SshConfigError(`${file}: too many nested Include levels (more than ${MAX_INCLUDE_DEPTH}; an Include loop?)`);
  const conf: ConfFile = { path: file, lines: [] };
  const errors: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const where = `${file}:${i + 1}`;
    const stripped = raw.replace(/[ \t\r\n\f]+$/, '');
    let { word, rest } = strdelim(stripped);
    if (word === '') ({ word, rest } = strdelim(rest));
    if (word === undefined || word === '' || word.startsWith('#')) return;
    const key = word.toLowerCase();
    let r = rest ?? '';
    r = r.replace(/^[ \t\r\n]+/, '');
    if (r === '') return void errors.push(`${where}: no argument after keyword "${word}"`);
    const args = argvSplit(r);
    if (!args) return void errors.push(`${where}: invalid quotes`);
    const restEq = r.replace(/^[ \t\r\n=]+/, '');
    const line: ConfLine = { file, line: i + 1, word, key, args, rest: key === 'match' ? r : restEq };
    const single = ['hostname', 'user', 'port', 'identityfile', 'identityfile2', 'hostkeyalias', 'certificatefile'];
    if (single.includes(key)) {
      if (args.length === 0 || args[0] === '') return void errors.push(`${where}: missing argument for ${word}`);
      if (args.length > 1) return void errors.push(`${where}: ${word} has extra arguments at end of line`);
    }
    if (key === 'port' && a2port(args[0]!) <= 0) return void errors.push(`${where}: bad port '${args[0]}'`);
    if (key === 'canonicaldomains') {
      if (args.some((a, i) => a.toLowerCase() === 'none' && (i > 0 || args.length > 1)))
        return void errors.push(`${where}: CanonicalDomains "none" must appear alone`);
      const bad = args.find((a) => !validDomain(a));
      if (bad !== undefined) return void errors.push(`${where}: CanonicalDomains: "${bad}" is not a valid domain name`);
    }
    if (key === 'host' && args.some((a) => a === '')) return void errors.push(`${where}: Host with an empty argument`);
    if (key === 'proxyjump') {
      const spec = jumpSpec(restEq);
      if (!validJump(spec)) return void errors.push(`${where}: invalid ProxyJump "${spec}"`);
    }
    if (key === 'match') {
      const criteria = matchCriteria(r);
      if (typeof criteria === 'string') return void errors.push(`${where}: bad Match condition: ${criteria}`);
      line.criteria = criteria;
    }
    if (key === 'include') {
      line.includes = [];
      for (const arg of args) {
        const pattern = arg.startsWith('/') || arg.startsWith('~') ? arg : `~/.ssh/${arg}`;
        for (const path of globFiles(pattern, o.envHome)) {
          let inc = cache.get(path);
          if (!inc || depth + 1 > MAX_INCLUDE_DEPTH) {
            const t = readOptional(path);
            if (t === undefined) continue;
            try {
              checkPerm(path);
            } catch (err) {
              errors.push(`${where}: Include ${(err as Error).message}`);
              continue;
            }
            inc = readConf(path, t, o, cache, depth + 1);
            cache.set(path, inc);
          }
          line.includes.push(inc);
        }
      }
    }
    conf.lines.push(line);
  });
  if (errors.length) throw new SshConfigError(errors.join('\n'));
  return conf;
}

interface Criterion {
  neg: boolean;
  /** Lower case, without `!`. */
  attr: string;
  arg?: string;
}

/** A Match line's criteria as OpenSSH's match_cfg_line() reads them; a message when OpenSSH refuses the line. */
function matchCriteria(s: string): Criterion[] | string {
  const out: Criterion[] = [];
  let rest: string | undefined = s;
  for (;;) {
    const a = strdelim(rest);
    rest = a.rest;
    if (a.word === undefined || a.word === '' || a.word.startsWith('#')) break;
    const neg = a.word.startsWith('!');
    const attr = (neg ? a.word.slice(1) : a.word).toLowerCase();
    if (attr === 'all') {
      const next = strdelim(rest).word;
      if (out.length > 1 || (next !== undefined && next !== '' && !next.startsWith('#'))) return `'${a.word}' cannot be combined with other Match attributes`;
      return [...out, { neg, attr }];
    }
    if (attr === 'canonical' || attr === 'final') {
      out.push({ neg, attr });
      continue;
    }
    if (!['host', 'originalhost', 'user', 'localuser', 'exec'].includes(attr)) return `unsupported Match attribute ${a.word}`;
    const b = strdelim(rest);
    rest = b.rest;
    if (b.word === undefined || b.word === '' || b.word.startsWith('#')) return `missing Match criteria for ${a.word}`;
    out.push({ neg, attr, arg: b.word });
  }
  return out.length === 0 ? 'one or more attributes required for Match' : out;
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
  const re = new RegExp(
    '^' +
      pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.') +
      '$',
    'i',
  );
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

  /** Lines for `name`: `host` for port 22, `[host]:port` otherwise (knownHostsName), or a HostKeyAlias. */
  private linesFor(name: string) {
    return this.lines.filter((l) => l.entry.marker !== 'cert-authority' && lineMatches(l.entry.patterns, name));
  }

  /** Key types recorded for this host, so the key exchange can ask for those first (as OpenSSH does). */
  keyTypes(name: string): string[] {
    return [
      ...new Set(
        this.linesFor(name)
          .filter((l) => !l.entry.marker)
          .map((l) => l.entry.keyType),
      ),
    ];
  }

  /** Judge the key a server offered. `keyType` is the type name inside the blob (e.g. ssh-ed25519). */
  verify(name: string, key: Buffer): HostKeyVerdict {
    const revoked = this.lines.find((l) => l.entry.marker === 'revoked' && l.entry.key.equals(key));
    if (revoked) return { status: 'revoked', file: revoked.file, line: revoked.entry.line };
    const mine = this.linesFor(name).filter((l) => !l.entry.marker);
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
