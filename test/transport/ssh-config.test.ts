import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadPlaybook } from '../../src/playbook/load.js';
import { fingerprint, KnownHosts, knownHostsName, lineMatches, parseKnownHosts, SshClientConfig } from '../../src/transport/ssh-config.js';
import { removeDir, requireBinary, tempDir } from '../integration/helpers/process.js';

// Two real ed25519 public keys (blobs), generated once per file with ssh-keygen.
let dir: string;
let keyA: string; // "ssh-ed25519 AAAA…"
let keyB: string;
const blob = (line: string) => Buffer.from(line.split(' ')[1]!, 'base64');
const hasKeygen = requireBinary('/usr/bin/ssh-keygen', 'apt-get install -y openssh-client'); // CI=true: missing is a failure

beforeAll(() => {
  dir = tempDir('sshcfg');
  if (!hasKeygen) return;
  for (const k of ['a', 'b']) execFileSync('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, k)]);
  keyA = readFileSync(join(dir, 'a.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  keyB = readFileSync(join(dir, 'b.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
});
afterAll(() => removeDir(dir));

describe('known_hosts', () => {
  test('names: port 22 is the bare host, others use [host]:port', () => {
    expect(knownHostsName('web1', 22)).toBe('web1');
    expect(knownHostsName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
  });

  test('patterns: comma lists, wildcards, negation', () => {
    expect(lineMatches(['web1', 'web2'], 'web2')).toBe(true);
    expect(lineMatches(['web*'], 'web17.example')).toBe(true);
    expect(lineMatches(['web?'], 'web17')).toBe(false);
    expect(lineMatches(['*.example', '!db.example'], 'db.example')).toBe(false);
    expect(lineMatches(['*.example', '!db.example'], 'app.example')).toBe(true);
    expect(lineMatches(['[10.0.0.1]:2222'], '[10.0.0.1]:2222')).toBe(true);
    expect(lineMatches(['[10.0.0.1]:2222'], '10.0.0.1')).toBe(false);
  });

  test('parse skips comments, blanks and malformed lines, keeps markers', () => {
    const lines = parseKnownHosts(`# comment\n\nweb1,web2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==\nbroken-line\n@revoked * ssh-rsa AAAAB3Nz\n@weird x y z\n`);
    expect(lines.map((l) => [l.line, l.marker, l.patterns])).toEqual([
      [3, undefined, ['web1', 'web2']],
      [5, 'revoked', ['*']],
    ]);
  });

  describe.skipIf(!hasKeygen)('verify (real keys, hashed by ssh-keygen -H)', () => {
    test('known, changed (same type), unknown, revoked', () => {
      const file = join(dir, 'kh');
      writeFileSync(file, `[web1]:2222 ${keyA}\nweb2 ${keyA}\n`);
      execFileSync('/usr/bin/ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' });
      const text = readFileSync(file, 'utf8');
      expect(text).not.toContain('web1'); // really hashed
      const kh = new KnownHosts([file, join(dir, 'missing-global')]);
      expect(kh.verify(knownHostsName('web1', 2222), blob(keyA))).toMatchObject({ status: 'known', file, line: 1 });
      expect(kh.verify('web2', blob(keyA))).toMatchObject({ status: 'known', line: 2 });
      expect(kh.verify('web1', blob(keyA))).toEqual({ status: 'unknown' }); // other port, other name
      expect(kh.verify('web2', blob(keyB))).toMatchObject({ status: 'changed', sameType: true, line: 2 });
      expect(kh.keyTypes('[web1]:2222')).toEqual(['ssh-ed25519']);
      const rev = join(dir, 'kh-revoked');
      writeFileSync(rev, `@revoked * ${keyB}\n* ${keyB}\n`);
      expect(new KnownHosts([rev]).verify('any', blob(keyB))).toMatchObject({ status: 'revoked', line: 1 });
    });

    test('fingerprint matches ssh-keygen -l', () => {
      const out = execFileSync('/usr/bin/ssh-keygen', ['-l', '-f', join(dir, 'a.pub')], { encoding: 'utf8' });
      expect(out).toContain(fingerprint(blob(keyA)));
    });
  });
});

describe('~/.ssh/config', () => {
  test('first match wins, patterns, IdentityFile list, tokens and ~', () => {
    const home = userInfo().homedir;
    const cfg = SshClientConfig.parse(
      [
        'Host bastion',
        '  HostName 10.1.0.1',
        '  User jump',
        'Host web-* !web-legacy',
        '  HostName %h.internal',
        '  Port 2200',
        '  IdentityFile ~/.ssh/web_%r',
        '  IdentityFile /keys/second',
        '  ProxyJump bastion',
        'Host *',
        '  User deploy',
        '  Port 22',
        '  UserKnownHostsFile ~/.ssh/kh1 ~/.ssh/kh2',
      ].join('\n'),
    );
    expect(cfg.lookup('web-01')).toEqual({
      hostName: 'web-01.internal',
      user: 'deploy',
      port: 2200,
      identityFiles: [join(home, '.ssh/web_deploy'), '/keys/second'],
      proxyJump: 'bastion',
      jump: { host: 'bastion' },
      proxyCommand: undefined,
      userKnownHostsFiles: [join(home, '.ssh/kh1'), join(home, '.ssh/kh2')],
      warnings: [],
    });
    expect(cfg.lookup('web-legacy')).toMatchObject({ hostName: undefined, port: 22, identityFiles: [], proxyJump: undefined });
    expect(cfg.lookup('bastion')).toMatchObject({ hostName: '10.1.0.1', user: 'jump' });
  });

  test('ProxyJump none and IdentityFile none disable them; ProxyCommand is exposed with its tokens, none disables it', () => {
    const cfg = SshClientConfig.parse(
      'Host a\n  ProxyJump none\n  IdentityFile none\n  ProxyCommand nc %h %p\nHost b\n  User u\n  Port 2022\n  ProxyCommand ssh -W %h:%p %r@gw # %n %%\nHost c\n  ProxyCommand none\n',
    );
    expect(cfg.lookup('a')).toMatchObject({ proxyJump: undefined, proxyCommand: undefined, identityFiles: [] });
    expect(cfg.lookup('b').proxyCommand).toBe('ssh -W b:2022 u@gw # b %');
    expect(cfg.lookup('c').proxyCommand).toBeUndefined();
  });

  test('a config OpenSSH refuses is an error naming file:line', () => {
    expect(() => SshClientConfig.parse('Host b\n  Port http-nope\n', { file: 'cfg' })).toThrow(/^cfg:2:1: bad port 'http-nope'/);
    expect(() => SshClientConfig.parse('Host a\n  ProxyJump a,,b\n', { file: 'cfg' })).toThrow(/cfg:2:1: invalid ProxyJump "a,,b"/);
    expect(() => SshClientConfig.parse('Host a\n  User\n', { file: 'cfg' })).toThrow(/cfg:2:1: no argument after keyword "User"/);
    expect(() => SshClientConfig.parse('Match colour blue\n', { file: 'cfg' })).toThrow(/cfg:1:1: bad Match condition: unsupported Match attribute colour/);
    expect(() => SshClientConfig.parse('User "unclosed\n', { file: 'cfg' })).toThrow(/cfg:1:1: invalid quotes/);
    expect(() => SshClientConfig.parse('Host a\n  IdentityFile %z\n', { file: 'cfg' }).lookup('a')).toThrow(/cfg:2:1: unknown token %z/);
    expect(() => SshClientConfig.parse('CanonicalDomains none corp.test\n', { file: 'cfg' })).toThrow(/cfg:1:1: CanonicalDomains "none" must appear alone/);
    expect(() => SshClientConfig.parse('CanonicalDomains corp..test\n', { file: 'cfg' })).toThrow(
      /cfg:1:1: CanonicalDomains: "corp\.\.test" is not a valid domain name/,
    );
    // A playbook's jumpHost is read like ssh -J: a hop OpenSSH refuses is an error too.
    expect(() => SshClientConfig.parse('').lookup('a', { jump: 'b:0' })).toThrow(/^jumpHost "b:0" is not OpenSSH's \[user@\]host\[:port\]/);
  });

  test('Match exec is never run: the condition is false and a warning names the line', () => {
    const flag = join(dir, 'exec-ran');
    const cfg = SshClientConfig.parse(
      `Host x\n  User before\nMatch host x exec "touch ${flag}"\n  Port 2222\nMatch host other exec "touch ${flag}"\n  Port 3333\n`,
      { file: 'cfg' },
    );
    const e = cfg.lookup('x');
    expect(() => readFileSync(flag)).toThrow();
    expect(e.port).toBeUndefined();
    // Only the line OpenSSH would really run (its other criteria matched) is reported.
    expect(e.warnings).toEqual([expect.stringMatching(/^cfg:3: Match exec .* is not supported/)]);
  });

  test('directives that change the connection are reported once per host with file:line; harmless values are not', () => {
    const cfg = SshClientConfig.parse(
      'Host strict\n  Ciphers aes256-gcm@openssh.com\n  ForwardAgent no\n  CertificateFile ~/.ssh/c.pub\n  ServerAliveInterval 30\nHost *\n  Ciphers aes128-ctr\n  Frobnicate yes\n',
      { file: 'cfg' },
    );
    expect(cfg.lookup('strict').warnings).toEqual([
      expect.stringMatching(/^cfg:2: Ciphers aes256-gcm@openssh.com changes how OpenSSH connects/),
      expect.stringMatching(/^cfg:4: CertificateFile /),
      expect.stringMatching(/^cfg:8: unknown ssh_config keyword Frobnicate/),
    ]);
    expect(cfg.lookup('other').warnings).toEqual([expect.stringMatching(/^cfg:7: Ciphers aes128-ctr/), expect.stringMatching(/^cfg:8: unknown/)]);
  });

  test('a missing file is an empty config', () => {
    expect(SshClientConfig.load(join(dir, 'nope')).lookup('h')).toEqual({ identityFiles: [], warnings: [] });
  });

  test('~/.ssh/config (and Included files) writable by others is refused, as OpenSSH does', () => {
    const f = join(dir, 'loose');
    writeFileSync(f, 'Host a\n  User u\n', { mode: 0o666 });
    chmodSync(f, 0o666);
    expect(() => SshClientConfig.load(f, { checkPerm: true })).toThrow(/bad owner or permissions/);
    expect(SshClientConfig.load(f).lookup('a').user).toBe('u'); // an explicit file (like ssh -F) is not checked
  });
});

describe('the ssh client config is checked when the playbook loads', () => {
  test('validate reports what OpenSSH would refuse, at FILE:LINE, before anything runs', () => {
    const cfg = join(dir, 'pb_ssh_config');
    writeFileSync(cfg, 'Host *\n  User deploy\nHost web-*\n  IdentityFile ~/.ssh/%z\n  Port 70000\n');
    const pb = join(dir, 'pb.yaml');
    writeFileSync(
      pb,
      `name: r\nversion: 1.0.0\ntransport: { type: ssh, configFile: ${cfg} }\nhosts:\n  - { name: h1, address: web-1 }\nsteps:\n  - run: "true"\n`,
    );
    expect(() => loadPlaybook(pb)).toThrow(new RegExp(`${cfg}:5:1: bad port '70000'`));
    writeFileSync(cfg, 'Host *\n  User deploy\nHost web-*\n  IdentityFile ~/.ssh/%z\n');
    expect(() => loadPlaybook(pb)).toThrow(new RegExp(`${cfg}:4:1: unknown token %z`));
    // A jump host's own Host block on the way to a host is checked too.
    writeFileSync(cfg, 'Host web-*\n  ProxyJump bastion\nHost bastion\n  IdentityFile ~/.ssh/%z\n');
    expect(() => loadPlaybook(pb)).toThrow(new RegExp(`${cfg}:4:1: unknown token %z`));
    writeFileSync(cfg, 'Host *\n  User deploy\n');
    expect(loadPlaybook(pb).hosts).toHaveLength(1);
    // The playbook's jumpHost is read like ssh -J: what OpenSSH refuses is an error at its line, before anything runs.
    writeFileSync(
      pb,
      `name: r\nversion: 1.0.0\ntransport: { type: ssh, configFile: ${cfg}, jumpHost: "ops@b1:2222,,b2" }\nhosts:\n  - { name: h1, address: web-1 }\nsteps:\n  - run: "true"\n`,
    );
    expect(() => loadPlaybook(pb)).toThrow(/pb\.yaml:3:\d+: transport\.jumpHost: not OpenSSH's \[user@\]host\[:port\]/);
  });
});
