import { existsSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { Command } from 'commander';
import YAML from 'yaml';
import { hostsFromInventory, hostsFromRegistry, type InitHost, type RegistryProvider } from '../app/init-hosts.js';
import { EXIT, GraywaveError } from '../errors.js';
import { didYouMean } from '../playbook/messages.js';
import { providerTypes } from '../providers/index.js';
import { playbookJsonSchema, trainJsonSchema } from '../reference/json-schema.js';
import { entries, explainText, findEntries } from '../reference/reference.js';

/** `graywave explain TYPE`: one provider, monitor, step kind, check, routing rule or state backend. */
export function explainCommand(): Command {
  return new Command('explain')
    .description('the options of a provider, monitor, step kind, check, routing rule or state backend (see docs/reference.md)')
    .argument('[type]', 'e.g. dubbo-zookeeper, rocketmq, waitDrained, http; none lists them all')
    .option('--json', 'one JSON object: {entries: [{type, kind, doc}]}')
    .action((type: string | undefined, opts: { json?: boolean }) => {
      const json = (list: ReturnType<typeof entries>) =>
        void process.stdout.write(JSON.stringify({ entries: list.map((e) => ({ type: e.type, kind: e.kind, doc: e.doc ?? null })) }) + '\n');
      if (!type) {
        const all = entries();
        if (opts.json) return json(all);
        process.stdout.write(all.map((e) => `${e.type.padEnd(22)} ${e.kind.padEnd(9)} ${e.doc?.summary.split(/(?<=\.) /)[0] ?? ''}`).join('\n') + '\n');
        return;
      }
      const found = findEntries(type);
      if (!found.length)
        throw new GraywaveError(
          `explain: unknown type "${type}"${didYouMean(
            type,
            entries().map((e) => e.type),
          )}`,
          EXIT.usage,
          'graywave explain (without a type) lists them all',
        );
      if (opts.json) return json(found);
      process.stdout.write(found.map(explainText).join('\n\n') + '\n');
    });
}

/** `graywave schema [--train]`: the JSON Schema of a playbook (schema/playbook.schema.json) or of a train file (schema/train.schema.json). */
export function schemaCommand(): Command {
  return new Command('schema')
    .description('print the JSON Schema of a playbook (--train: of a release train file), for editors (yaml-language-server)')
    .option('--json', 'the schema on one line (it is JSON either way)')
    .option('--train', 'the schema of a release train file (apps: instead of hosts: and steps:)')
    .action((opts: { json?: boolean; train?: boolean }) => {
      const schema = opts.train ? trainJsonSchema() : playbookJsonSchema();
      process.stdout.write((opts.json ? JSON.stringify(schema) : JSON.stringify(schema, null, 2)) + '\n');
    });
}

/** Short names people use for provider types in --stack. */
const ALIASES: Record<string, string> = {
  dubbo: 'dubbo-zookeeper',
  lts: 'lts-zookeeper',
  elasticjob: 'elasticjob-zookeeper',
  elk: 'elasticsearch',
  es: 'elasticsearch',
  prom: 'prometheus',
  'http-monitor': 'http',
};
/** init writes the schema beside the playbook (`graywave schema` prints it again after an upgrade). */
const SCHEMA_LINE = '# yaml-language-server: $schema=playbook.schema.json';

/** Hosts init writes instead of the four sample ones: from an inventory or a registry (src/app/init-hosts.ts). */
export interface StarterHosts {
  hosts: InitHost[];
  /** Where they came from, for the comment above them. */
  from: string;
  /** The `inventory:` line that reads the same hosts at every run instead, shown as a comment. */
  instead: string;
  /** The registry's provider entry (with --from-registry): written under providers: in place of its example. */
  provider?: RegistryProvider;
}

/** One host as a one-line flow mapping; host variables holding Jinja2 `{{ }}` text are left out (not graywave templates). */
function hostLine(h: InitHost): { line: string; dropped: string[] } {
  const dropped: string[] = [];
  const vars = Object.fromEntries(
    Object.entries(h.vars ?? {}).filter(([k, v]) => {
      const jinja = JSON.stringify(v).includes('{{');
      if (jinja) dropped.push(k);
      return !jinja;
    }),
  );
  const o: Record<string, unknown> = { name: h.name, address: h.address };
  if ('port' in h && h.port !== undefined) o.port = h.port;
  if ('ssh' in h && h.ssh && Object.keys(h.ssh).length) o.ssh = h.ssh;
  if (Object.keys(vars).length) o.vars = vars;
  if (h.labels && Object.keys(h.labels).length) o.labels = h.labels;
  return { line: YAML.stringify(o, { collectionStyle: 'flow', lineWidth: 0 }).trim(), dropped };
}

/** The starter playbook for a stack: every provider's own documented example, the usual pipeline around it. */
export function starterPlaybook(stack: string[], name = 'order-service', hosts?: StarterHosts): string {
  const types = stack.map((s) => {
    const t = ALIASES[s] ?? s;
    const pt = providerTypes.find((p) => p.type === t);
    if (!pt)
      throw new GraywaveError(
        `init --stack: unknown provider type "${s}"${didYouMean(
          t,
          providerTypes.map((p) => p.type),
        )}`,
        EXIT.usage,
        `known: ${providerTypes.map((p) => p.type).join(', ')}`,
      );
    return pt;
  });
  const reg = hosts?.provider;
  if (reg && !types.some((t) => t.type === reg.spec.type)) types.unshift(providerTypes.find((p) => p.type === reg.spec.type)!);
  const nameOf = (t: string) => (reg && t === reg.spec.type ? reg.name : t.replace(/-zookeeper$/, '').replace(/[^a-z0-9]/g, ''));
  const drains = types.filter((t) => t.role === 'drain');
  const monitor = types.find((t) => t.role === 'monitor');
  const relabel = drains.find((t) => ['dubbo-zookeeper', 'nacos', 'etcd'].includes(t.type));
  const out = [
    SCHEMA_LINE,
    `# A starter playbook for: ${types.map((t) => t.type).join(', ')}. Reference: graywave explain TYPE, docs/reference.md.`,
    '# Check it with `graywave validate`, review it with `graywave plan` (nothing is contacted), then `graywave run`.',
    `name: ${name}                 # release name: the key of the lock and the journal`,
    'version: "1.0.0"                    # quoted; from CI: graywave run … --set version=$VERSION',
  ];
  if (hosts) {
    const lines = hosts.hosts.map(hostLine);
    const dropped = [...new Set(lines.flatMap((l) => l.dropped))];
    out.push(
      `# ${hosts.hosts.length} host${hosts.hosts.length === 1 ? '' : 's'} from ${hosts.from}, as listed when this file was written.`,
      `# To read them again at every run instead: ${hosts.instead}`,
      ...(dropped.length ? [`# Left out of vars (Jinja2 text, not a graywave template): ${dropped.join(', ')}`] : []),
      'hosts:',
      ...lines.map((l) => `  - ${l.line}`),
      "transport: { type: ssh }            # user, identityFile, jumpHost …: see the README's Transports section",
    );
  } else {
    out.push(
      'hosts:                              # or inventory: ./hosts.yaml',
      '  - { name: app-01, address: 10.0.0.11 }',
      '  - { name: app-02, address: 10.0.0.12 }',
      '  - { name: app-03, address: 10.0.0.13 }',
      '  - { name: app-04, address: 10.0.0.14 }',
      'transport: { type: local }          # type: ssh, user: deploy … for real hosts (graywave explain ssh is in the README)',
    );
  }
  out.push(
    'waves:',
    '  canary: 1                         # a first wave of one host',
    '  size: 25%                         # then a quarter of the fleet per wave',
    '  pause: { afterCanary: approve, between: 1m }   # a person approves the canary; a minute between the other waves',
    'providers:',
  );
  for (const t of types) {
    out.push(`  ${nameOf(t.type)}:                     # ${t.doc?.summary.split(/(?<=\.) /)[0] ?? t.type}`);
    const example = reg && t.type === reg.spec.type ? YAML.stringify(reg.spec, { lineWidth: 0 }).trim() : (t.doc?.example ?? `type: ${t.type}`);
    for (const line of example.split('\n')) out.push(`    ${line}`);
  }
  out.push('steps:');
  for (const t of drains) out.push(`  - drain: ${nameOf(t.type)}`);
  if (monitor) {
    const q = monitor.type === 'prometheus' ? `sum(rate(http_server_requests_seconds_count{instance="{{host.address}}:8080"}[1m]))` : '';
    out.push(
      `  - waitDrained: { monitor: ${nameOf(monitor.type)}, query: '${q}', below: 0, stableFor: 3, interval: 5s, timeout: 10m }   # traffic really at zero`,
    );
  }
  out.push(
    '  - deploy:',
    '      artifact: ./build/app-{{version}}.tar.gz',
    '      to: /opt/app',
    '      start: "systemctl restart app"',
    '      healthy: { http: "http://127.0.0.1:8080/health" }',
  );
  if (relabel) out.push(`  - relabel: { provider: ${nameOf(relabel.type)} }   # into group GREEN`);
  for (const t of [...drains].reverse()) out.push(`  - restore: ${nameOf(t.type)}`);
  out.push(
    'verify:                             # after each wave',
    '  - name: smoke',
    '    http: { url: "http://{{host.address}}:8080/health", expect: { status: 200 } }',
    'onFailure: halt',
  );
  return out.join('\n') + '\n';
}

/** `graywave init --stack …`: writes the starter playbook (never over an existing file). */
export function initCommand(): Command {
  return new Command('init')
    .description('write a commented starter playbook for a stack, e.g. --stack dubbo-zookeeper,rocketmq,lts,prometheus,nginx')
    .option('--stack <types>', 'provider types, comma-separated', 'prometheus')
    .option('--name <release>', 'release name (default: the registry application/service, else order-service)')
    .option('--inventory <file[:group]>', 'hosts from an Ansible inventory (INI, YAML or ansible-inventory --list JSON), or one group of it')
    .option(
      '--from-registry <url>',
      'hosts from a registry: zookeeper://zk1:2181,zk2:2181 (Dubbo) or nacos://nacos:8848 / http://nacos:8848 (Nacos); with --service',
    )
    .option('--service <name>', 'with --from-registry: the Dubbo application (or interface) or the Nacos service whose instances are the hosts')
    .option('-o, --out <file>', 'where to write it', 'playbook.yaml')
    .option('--json', 'one JSON object: {file, schema, hosts} (with --out -: {playbook})')
    .action(async (opts: { stack: string; name?: string; inventory?: string; fromRegistry?: string; service?: string; out: string; json?: boolean }) => {
      if (opts.inventory && opts.fromRegistry) throw new GraywaveError('init: --inventory and --from-registry are two sources of hosts: give one', EXIT.usage);
      if (opts.fromRegistry && !opts.service)
        throw new GraywaveError('init --from-registry needs --service NAME (the Dubbo application or the Nacos service)', EXIT.usage);
      if (opts.service && !opts.fromRegistry) throw new GraywaveError('init --service goes with --from-registry URL', EXIT.usage);
      if (opts.out !== '-' && existsSync(opts.out))
        throw new GraywaveError(`init: ${opts.out} exists; not overwriting it`, EXIT.usage, 'give another name with --out, or --out - for stdout');
      const stack = opts.stack
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      starterPlaybook(stack); // an unknown --stack type is refused before any inventory is read or registry asked
      let hosts: StarterHosts | undefined;
      let name = opts.name;
      if (opts.inventory) {
        const inv = hostsFromInventory(opts.inventory, process.cwd());
        // The inventory as the playbook would name it: relative to the playbook's directory (as given when absolute).
        const ref = JSON.stringify(isAbsolute(inv.file) ? inv.file : relative(dirname(resolve(opts.out === '-' ? 'x' : opts.out)), resolve(inv.file)));
        hosts = {
          hosts: inv.hosts,
          from: `the Ansible inventory ${inv.file}${inv.group ? ` (group ${inv.group})` : ''}`,
          instead: `inventory: { ansible: ${ref}${inv.group ? `, group: ${inv.group}` : ''} }`,
        };
      } else if (opts.fromRegistry) {
        const reg = await hostsFromRegistry(opts.fromRegistry, opts.service!, process.cwd());
        hosts = {
          hosts: reg.hosts,
          provider: reg.provider,
          from: `${opts.fromRegistry} (${opts.service})`,
          instead: `inventory: { provider: ${reg.provider.name}, service: ${JSON.stringify(opts.service)} }`,
        };
        name ??= String(reg.provider.spec.application ?? opts.service).replace(/[^A-Za-z0-9._-]/g, '-');
      }
      const text = starterPlaybook(stack, name ?? 'order-service', hosts);
      if (opts.out === '-') return void process.stdout.write(opts.json ? JSON.stringify({ playbook: text }) + '\n' : text);
      writeFileSync(opts.out, text);
      const schemaFile = join(dirname(opts.out), 'playbook.schema.json');
      if (!existsSync(schemaFile)) writeFileSync(schemaFile, JSON.stringify(playbookJsonSchema(), null, 2) + '\n');
      if (opts.json) return void process.stdout.write(JSON.stringify({ file: opts.out, schema: schemaFile, hosts: hosts?.hosts.length ?? 0 }) + '\n');
      process.stdout.write(
        `wrote ${opts.out}${hosts ? ` with ${hosts.hosts.length} host(s) from ${hosts.from}` : ''} (and ${schemaFile} for editors): graywave validate ${opts.out} && graywave plan ${opts.out}\n`,
      );
    });
}
