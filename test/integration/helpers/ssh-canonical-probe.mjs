// Runs inside the DNS test namespace (see dns.ts): what graywave's built ssh_config reader and SSH transport make
// of hosts with CanonicalizeHostname, printed as JSON for test/integration/ssh-canonicalize.test.ts.
//   lookup FILE HOST...                     → [{host, hostname, user, port, error?}]
//   connect CONFIG KNOWN_HOSTS DIR HOST...  → {results: [{host, stdout?, error?}], logs}
import { userInfo } from 'node:os';
import { canonicalName, SshClientConfig } from '../../../dist/transport/ssh-config.js';
import { SshTransport, sshTransportOptions } from '../../../dist/transport/ssh.js';
import { Secrets } from '../../../dist/util/secrets.js';

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'lookup') {
  const [file, ...hosts] = rest;
  const cfg = SshClientConfig.load(file, { checkPerm: false });
  const out = [];
  for (const host of hosts) {
    let e = cfg.lookup(host);
    let error;
    try {
      if (e.canonicalize) {
        const c = await canonicalName(e.canonicalize);
        if (c !== undefined) e = cfg.lookup(host, {}, c);
      }
    } catch (err) {
      error = err.message;
    }
    out.push({ host, hostname: e.hostName ?? host.toLowerCase(), user: e.user ?? userInfo().username, port: e.port ?? 22, ...(error ? { error } : {}) });
  }
  console.log(JSON.stringify(out));
} else {
  const [config, knownHosts, dir, ...hosts] = rest;
  const logs = [];
  const t = new SshTransport(sshTransportOptions.parse({ configFile: config, knownHostsFile: knownHosts, connectTimeout: '10s' }), {
    dir,
    secrets: new Secrets(dir, {}),
    log: (h, line) => logs.push(`${h.name}: ${line}`),
  });
  const results = [];
  for (const host of hosts) {
    try {
      const r = await t.exec({ name: host, address: host, vars: {}, labels: {} }, 'echo "$SSH_CONNECTION" | cut -d" " -f3; whoami');
      results.push({ host, stdout: r.stdout });
    } catch (err) {
      results.push({ host, error: err.message });
    }
  }
  await t.close();
  console.log(JSON.stringify({ results, logs }));
}
