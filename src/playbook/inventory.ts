import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { ConfigIssue } from '../errors.js';
import { Source, type Path } from './source.js';

/**
 * Inventory that is not a file (`inventory: FILE` is read by load.ts itself):
 *
 *   inventory: { command: "./list-hosts --json" }          # runs on this machine, in the playbook's directory
 *   inventory: { provider: dubbo, service: com.foo.Order } # the hosts a registry provider lists for a service
 *
 * Both run at load time — so `validate` and `plan` run them too — and must print / yield the same host list as an
 * inventory file (a YAML or JSON list of hosts, or a mapping with `hosts:`). Their output is parsed and checked like
 * a file; problems are reported as `PLAYBOOK:LINE:COL` at the `inventory` key, plus the output's own line:col under
 * the name `PLAYBOOK (inventory command)`.
 *
 * A registry query runs in a child process (src/playbook/inventory-main.ts) so that loading stays synchronous; the
 * provider's `listHosts(service)` answers it (nacos, dubbo-zookeeper and etcd implement it).
 */
export const inventoryCommand = z.object({ command: z.string().min(1), timeout: z.number().int().min(1).max(600).default(60) }).strict();
export const inventoryProvider = z
  .object({ provider: z.string().min(1), service: z.string().min(1), timeout: z.number().int().min(1).max(600).default(60) })
  .strict();

const MAX_OUTPUT = 1024 * 1024;

/** Runs the inventory source and returns its output as a Source (or undefined after adding the problem to `src`). */
export function inventorySource(src: Source, raw: unknown, dir: string, providers: unknown, issues: ConfigIssue[]): Source | undefined {
  const path: Path = ['inventory'];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    src.add(path, 'inventory: a file name, {ansible: FILE, group: NAME}, {command: "..."} or {provider: NAME, service: NAME}');
    return undefined;
  }
  const name = `${src.file} (inventory ${'command' in raw ? 'command' : 'provider'})`;
  let res: ReturnType<typeof spawnSync>;
  let what: string;
  if ('command' in raw) {
    const c = inventoryCommand.safeParse(raw);
    if (!c.success) return (src.add(path, `inventory: ${c.error.issues.map((i) => `${i.path.join('.') || 'command'}: ${i.message}`).join('; ')}`), undefined);
    what = `inventory command \`${c.data.command}\``;
    res = spawnSync('/bin/sh', ['-c', c.data.command], {
      cwd: dir,
      encoding: 'utf8',
      timeout: c.data.timeout * 1000,
      maxBuffer: MAX_OUTPUT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } else {
    const p = inventoryProvider.safeParse(raw);
    if (!p.success) return (src.add(path, `inventory: ${p.error.issues.map((i) => `${i.path.join('.') || 'provider'}: ${i.message}`).join('; ')}`), undefined);
    const spec = (providers as Record<string, unknown> | undefined)?.[p.data.provider];
    if (!spec || typeof spec !== 'object')
      return (src.add([...path, 'provider'], `unknown provider "${p.data.provider}" (declare it under providers:)`), undefined);
    what = `inventory from provider ${p.data.provider} (service ${p.data.service})`;
    const main = fileURLToPath(new URL('./inventory-main.js', import.meta.url));
    res = spawnSync(process.execPath, [main], {
      cwd: dir,
      encoding: 'utf8',
      timeout: p.data.timeout * 1000,
      maxBuffer: MAX_OUTPUT,
      input: JSON.stringify({ dir, provider: spec, service: p.data.service }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }
  if (res.error || res.status !== 0) {
    const why = res.error ? res.error.message : `exit ${res.status ?? res.signal}`;
    const err = String(res.stderr ?? '')
      .trim()
      .split('\n')
      .slice(-3)
      .join(' | ');
    src.add(path, `${what} failed (${why})${err ? `: ${err}` : ''}`);
    return undefined;
  }
  const inv = new Source(name, String(res.stdout));
  issues.push(...inv.issues.splice(0));
  return inv;
}
