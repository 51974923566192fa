import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { parse as parseShell } from 'shell-quote';
import { isMap, isScalar, LineCounter, parseDocument, type Document, type Node, type ScalarTag } from 'yaml';
import { z } from 'zod';
import type { ConfigIssue } from '../errors.js';
import { hostSchema } from './schema.js';
import type { Source } from './source.js';
import type { Host } from './types.js';

/**
 * Ansible inventories, read natively (no Ansible needed):
 *
 *   inventory: { ansible: ./hosts.ini, group: app }
 *
 * The file is an INI or YAML inventory, or the JSON that `ansible-inventory --list` prints. As Ansible does, we
 * read `group_vars/` and `host_vars/` next to it (a file NAME, NAME.yml, NAME.yaml or NAME.json, or a directory
 * NAME/ whose files are read in name order), expand host ranges (`app[01:04]`, `db-[a:c]`, `[1:10:2]`), follow
 * `[group:children]`, and merge variables in Ansible's order: the `all` group's inventory vars, then each group's
 * inventory vars from the least deep group to the deepest (ties: ansible_group_priority, then name), then
 * group_vars/all, then group_vars/GROUP in that same order, then the host's inventory vars, then host_vars/HOST.
 * INI values are read as Python literals (as Ansible's ast.literal_eval), YAML as YAML 1.1 (as PyYAML).
 *
 * Mapping to graywave hosts (tests check it against `ansible-inventory --list`):
 *   inventory hostname → name;  ansible_host → address (default: the name; `ansible_connection: local` → local)
 *   ansible_port → port;  ansible_user → ssh.user;  ansible_ssh_private_key_file → ssh.identityFile
 *   `-o ProxyJump=X` / `-J X` (or `-o ProxyCommand="ssh -W %h:%p [-p P] [user@]X"`) in ansible_ssh_common_args
 *     or ansible_ssh_extra_args → ssh.jumpHost
 *   groups → labels: `group` is the host's most specific group (the deepest group, under the selected group when
 *     `group:` is given; ties: the group declared first), and every group the host is in (parents included, `all`
 *     excluded) is a label of its own with the value "true". So `waves: { by: group }` releases child groups one
 *     after another, and `{{host.labels.canary}}` tells a member of group canary.
 *   every other variable → vars (the connection variables above are taken out, and so are passwords and vaulted
 *     values: see SECRET_VARS).
 */
export const inventoryAnsible = z.object({ ansible: z.string().min(1), group: z.string().min(1).optional() }).strict();

/** A host as an Ansible inventory gives it, with its per-host connection settings. */
export type AnsibleHost = Host & { ssh?: { user?: string; port?: number; identityFile?: string; jumpHost?: string } };

interface Group {
  name: string;
  hosts: string[];
  children: string[];
  parents: string[];
  vars: Record<string, unknown>;
  depth: number;
  priority: number;
  order: number;
}

interface InvHost {
  name: string;
  vars: Record<string, unknown>;
  /** Where it was first declared, for messages. */
  at: { line: number; col: number };
}

/** An inventory problem at FILE:LINE:COL. */
class InvError extends Error {
  constructor(
    message: string,
    readonly line = 1,
    readonly col = 1,
    readonly file?: string,
  ) {
    super(message);
  }
}

/** Groups and hosts in declaration order, built as Ansible's InventoryData does. */
class Inventory {
  readonly groups = new Map<string, Group>();
  readonly hosts = new Map<string, InvHost>();

  constructor() {
    this.group('all');
    this.group('ungrouped');
  }

  group(name: string): Group {
    let g = this.groups.get(name);
    if (!g) this.groups.set(name, (g = { name, hosts: [], children: [], parents: [], vars: {}, depth: 0, priority: 1, order: this.groups.size }));
    return g;
  }

  host(name: string, group: string, at: { line: number; col: number }, port?: number): InvHost {
    let h = this.hosts.get(name);
    if (!h) this.hosts.set(name, (h = { name, vars: {}, at }));
    const g = this.group(group);
    if (!g.hosts.includes(name)) g.hosts.push(name);
    if (port !== undefined) h.vars.ansible_port = port;
    return h;
  }

  setGroupVar(group: string, key: string, value: unknown): void {
    const g = this.group(group);
    // As Ansible's Group.set_variable: the priority is a property of the group, not a variable.
    if (key === 'ansible_group_priority') g.priority = Number(value);
    else g.vars[key] = value;
  }

  addChild(parent: string, child: string, at: { line: number; col: number }): void {
    const p = this.group(parent);
    const c = this.group(child);
    if (parent === child || this.ancestors(parent).has(child))
      throw new InvError(`adding group ${child} as a child of ${parent} creates a loop`, at.line, at.col);
    if (!p.children.includes(child)) p.children.push(child);
    if (!c.parents.includes(parent)) c.parents.push(parent);
  }

  ancestors(name: string): Set<string> {
    const out = new Set<string>();
    const walk = (n: string) => {
      for (const p of this.groups.get(n)?.parents ?? []) if (!out.has(p)) (out.add(p), walk(p));
    };
    walk(name);
    return out;
  }

  /** Ansible's reconcile_inventory(): parentless groups go under all, hosts with no group into ungrouped; depths. */
  reconcile(): void {
    for (const g of this.groups.values()) if (g.name !== 'all' && g.parents.length === 0) this.addChild('all', g.name, { line: 1, col: 1 });
    const inGroup = new Set<string>();
    for (const g of this.groups.values()) if (g.name !== 'all' && g.name !== 'ungrouped') g.hosts.forEach((h) => inGroup.add(h));
    const ungrouped = this.group('ungrouped');
    ungrouped.hosts = ungrouped.hosts.filter((h) => !inGroup.has(h));
    for (const h of this.hosts.keys()) if (!inGroup.has(h) && !ungrouped.hosts.includes(h)) ungrouped.hosts.push(h);
    const all = this.group('all');
    all.hosts = [...this.hosts.keys()];
    const depth = (n: string, d: number) => {
      const g = this.groups.get(n)!;
      if (d < g.depth) return;
      g.depth = d;
      for (const c of g.children) depth(c, d + 1);
    };
    depth('all', 0);
  }

  /** Every group the host is in, parents included. */
  groupsOf(host: string): Group[] {
    const names = new Set<string>();
    for (const g of this.groups.values()) {
      if (g.hosts.includes(host)) {
        names.add(g.name);
        for (const a of this.ancestors(g.name)) names.add(a);
      }
    }
    return [...names].map((n) => this.groups.get(n)!);
  }

  /** The group and its descendants, in Ansible's order (itself, its children, then deeper levels). */
  descendants(name: string): Group[] {
    const start = this.groups.get(name)!;
    const ordered = [start, ...start.children.map((c) => this.groups.get(c)!)];
    const seen = new Set(ordered.map((g) => g.name));
    let level = start.children;
    while (level.length) {
      const next: string[] = [];
      for (const n of level) for (const c of this.groups.get(n)!.children) if (!seen.has(c)) (seen.add(c), next.push(c), ordered.push(this.groups.get(c)!));
      level = next;
    }
    return ordered;
  }

  hostsOf(group: string): string[] {
    if (group === 'all') return [...this.hosts.keys()];
    const out: string[] = [];
    for (const g of this.descendants(group)) for (const h of g.hosts) if (!out.includes(h)) out.push(h);
    return out;
  }
}

const sortGroups = (gs: Group[]) => [...gs].sort((a, b) => a.depth - b.depth || a.priority - b.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

// ---------------------------------------------------------------------------------------------------------------
// Host patterns (Ansible's parse_address + expand_hostname_range)

const HOSTPORT = /^((?:[^:[\]]|\[[^\]]*\])*):([0-9]+)$/;
const BRACKETED = /^\[(.+)\]:([0-9]+)$/;

/** `host`, `host:port`, `[v6]:port`, with `[a:b(:step)]` ranges expanded. */
export function expandHostPattern(pattern: string): { hosts: string[]; port?: number } {
  let host = pattern;
  let port: number | undefined;
  for (const re of [BRACKETED, HOSTPORT]) {
    const m = re.exec(host);
    if (m) {
      host = m[1]!;
      port = Number(m[2]);
    }
  }
  if (/[\s,]/.test(host) || host === '') {
    // Not a host identifier: Ansible keeps the text as it is.
    host = pattern;
    port = undefined;
  }
  return { hosts: host.includes('[') && !isIPv6(host) ? expandRange(host) : [host], port };
}

function isIPv6(s: string): boolean {
  return s.includes(':') && /^[0-9a-fA-F:.]+$/.test(s);
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

function expandRange(line: string): string[] {
  const open = line.indexOf('[');
  const close = line.indexOf(']', open);
  if (close < 0) throw new InvError(`host range in "${line}" has no closing ]`);
  const head = line.slice(0, open);
  const tail = line.slice(close + 1);
  const bounds = line.slice(open + 1, close).split(':');
  if (bounds.length !== 2 && bounds.length !== 3) throw new InvError(`host range in "${line}" must be begin:end or begin:end:step`);
  const beg = bounds[0] || '0';
  const end = bounds[1]!;
  const step = bounds.length === 3 ? Number(bounds[2]) : 1;
  if (!end) throw new InvError(`host range in "${line}" must specify an end value`);
  if (!Number.isInteger(step) || step < 1) throw new InvError(`host range step in "${line}" must be a positive number`);
  let fill = (x: string | number) => String(x);
  if (beg[0] === '0' && beg.length > 1) {
    if (beg.length !== end.length) throw new InvError(`host range in "${line}" must specify equal-length begin and end formats`);
    fill = (x) => String(x).padStart(beg.length, '0');
  }
  const seq: (string | number)[] = [];
  const ib = beg.length === 1 ? LETTERS.indexOf(beg) : -1;
  const ie = end.length === 1 ? LETTERS.indexOf(end) : -1;
  if (ib >= 0 && ie >= 0) {
    if (ib > ie) throw new InvError(`host range in "${line}" must have begin <= end`);
    for (let i = ib; i <= ie; i += step) seq.push(LETTERS[i]!);
  } else {
    if (!/^\d+$/.test(beg) || !/^\d+$/.test(end)) throw new InvError(`host range in "${line}" is neither numeric nor a single-letter range`);
    for (let i = Number(beg); i <= Number(end); i += step) seq.push(i);
  }
  return seq.flatMap((x) => {
    const name = head + fill(x) + tail;
    return name.includes('[') ? expandRange(name) : [name];
  });
}

// ---------------------------------------------------------------------------------------------------------------
// INI values: Python literals, as Ansible's ast.literal_eval (hand-written: a small, closed grammar)

/** The value Ansible gives an INI value: a Python literal when it parses as one, else the text itself. */
export function pythonLiteral(text: string): unknown {
  const p = new PyParser(text);
  try {
    const v = p.expr();
    p.ws();
    if (p.i !== text.length) return text;
    return v;
  } catch {
    return text;
  }
}

class PyParser {
  i = 0;
  constructor(private readonly s: string) {}

  ws(): void {
    while (this.i < this.s.length && ' \t'.includes(this.s[this.i]!)) this.i++;
  }

  private eat(c: string): boolean {
    this.ws();
    if (this.s.startsWith(c, this.i)) {
      this.i += c.length;
      return true;
    }
    return false;
  }

  /** A top-level expression: a bare tuple `1, 2` is a tuple (→ list). */
  expr(): unknown {
    const first = this.atom();
    if (!this.eat(',')) return first;
    const items = [first];
    for (;;) {
      this.ws();
      if (this.i >= this.s.length) break;
      items.push(this.atom());
      if (!this.eat(',')) break;
    }
    return items;
  }

  private seq(close: string): unknown[] {
    const items: unknown[] = [];
    for (;;) {
      if (this.eat(close)) return items;
      items.push(this.atom());
      if (this.eat(close)) return items;
      if (!this.eat(',')) throw new Error('expected ,');
    }
  }

  /** Python string literals (prefixes r/b/u, all quote styles); adjacent ones concatenate. */
  private strings(): string {
    const s = this.s;
    let out = '';
    // Adjacent string literals concatenate, as in Python.
    while (true) {
      const m = /^([rRbBuU]|[rR][bB]|[bB][rR])?('''|"""|'|")/.exec(s.slice(this.i));
      if (!m) break;
      const raw = (m[1] ?? '').toLowerCase().includes('r');
      const q = m[2]!;
      this.i += m[0].length;
      for (;;) {
        if (this.i >= s.length) throw new Error('unterminated string');
        if (s.startsWith(q, this.i)) {
          this.i += q.length;
          break;
        }
        const ch = s[this.i]!;
        if (ch === '\\' && !raw) {
          const n = s[this.i + 1];
          const esc: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v', '0': '\0' };
          if (n !== undefined && n in esc) ((out += esc[n]), (this.i += 2));
          else if (n === 'x' && /^[0-9a-fA-F]{2}$/.test(s.slice(this.i + 2, this.i + 4)))
            ((out += String.fromCharCode(parseInt(s.slice(this.i + 2, this.i + 4), 16))), (this.i += 4));
          else if (n === 'u' && /^[0-9a-fA-F]{4}$/.test(s.slice(this.i + 2, this.i + 6)))
            ((out += String.fromCharCode(parseInt(s.slice(this.i + 2, this.i + 6), 16))), (this.i += 6));
          else ((out += '\\'), this.i++);
        } else if (ch === '\\' && raw && s[this.i + 1] !== undefined) {
          out += ch + s[this.i + 1];
          this.i += 2;
        } else {
          out += ch;
          this.i++;
        }
      }
      this.ws();
    }
    return out;
  }

  atom(): unknown {
    this.ws();
    const s = this.s;
    const c = s[this.i];
    if (c === undefined) throw new Error('end');
    if (c === '[') return (this.i++, this.seq(']'));
    if (c === '(') {
      this.i++;
      if (this.eat(')')) return [];
      const first = this.atom();
      if (this.eat(')')) return first; // parenthesised value, not a tuple
      if (!this.eat(',')) throw new Error('expected ,');
      return [first, ...this.seq(')')];
    }
    if (c === '{') {
      this.i++;
      if (this.eat('}')) return {};
      const k = this.atom();
      if (this.eat(':')) {
        const out: Record<string, unknown> = {};
        out[String(k)] = this.atom();
        while (this.eat(',')) {
          if (this.eat('}')) return out;
          const key = this.atom();
          if (!this.eat(':')) throw new Error('expected :');
          out[String(key)] = this.atom();
        }
        if (!this.eat('}')) throw new Error('expected }');
        return out;
      }
      // A set: not representable in JSON; Ansible could not print it either.
      throw new Error('set');
    }
    if (/^([rRbBuU]|[rR][bB]|[bB][rR])?('''|"""|'|")/.test(s.slice(this.i))) return this.strings();
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(this.i));
    if (word) {
      this.i += word[0].length;
      if (word[0] === 'True') return true;
      if (word[0] === 'False') return false;
      if (word[0] === 'None') return null;
      throw new Error('name');
    }
    let sign = 1;
    if (c === '-' || c === '+') {
      this.i++;
      if (c === '-') sign = -1;
      this.ws();
      const v = this.atom();
      if (typeof v !== 'number') throw new Error('unary on non-number');
      return sign * v;
    }
    const num =
      /^(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|(?:\d(?:_?\d)*)?\.\d(?:_?\d)*(?:[eE][-+]?\d(?:_?\d)*)?|\d(?:_?\d)*\.?(?:[eE][-+]?\d(?:_?\d)*)?)(?![A-Za-z0-9_.])/.exec(
        s.slice(this.i),
      );
    if (!num) throw new Error('not a literal');
    const t = num[0].replace(/_/g, '');
    this.i += num[0].length;
    if (/^0[xob]/i.test(t)) return Number(t.toLowerCase());
    if (/^\d+$/.test(t) && t.length > 1 && t[0] === '0' && !/^0+$/.test(t)) throw new Error('leading zero');
    return Number(t);
  }
}

/** POSIX shlex.split(line, comments=True), as Ansible splits an INI host line. */
function shlexSplit(line: string): string[] {
  const out: string[] = [];
  let cur: string | undefined;
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      if (cur !== undefined) (out.push(cur), (cur = undefined));
      i++;
    } else if (c === '#') break;
    else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error('No closing quotation');
      cur = (cur ?? '') + line.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      for (;;) {
        if (j >= line.length) throw new Error('No closing quotation');
        const d = line[j]!;
        if (d === '"') break;
        if (d === '\\' && j + 1 < line.length && '\\"$`\n'.includes(line[j + 1]!)) ((s += line[j + 1]), (j += 2));
        else ((s += d), j++);
      }
      cur = (cur ?? '') + s;
      i = j + 1;
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new Error('No escaped character');
      cur = (cur ?? '') + line[i + 1];
      i += 2;
    } else {
      cur = (cur ?? '') + c;
      i++;
    }
  }
  if (cur !== undefined) out.push(cur);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// File formats

const SECTION = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$/;
const GROUPNAME = /^([^:\]\s]+)\s*(?:#.*)?$/;

function readIni(inv: Inventory, text: string): void {
  const pending = new Map<string, { line: number; state: string; parents: string[] }>();
  let group = 'ungrouped';
  let state = 'hosts';
  const addPendingChildren = (g: string) => {
    const p = pending.get(g)!;
    pending.delete(g);
    for (const parent of p.parents) {
      inv.addChild(parent, g, { line: p.line, col: 1 });
      if (pending.get(parent)?.state === 'children') addPendingChildren(parent);
    }
  };
  text.split(/\r?\n/).forEach((raw, idx) => {
    const lineNo = idx + 1;
    const line = raw.trim();
    const col = raw.length - raw.trimStart().length + 1;
    if (!line || line[0] === '#' || line[0] === ';') return;
    const m = SECTION.exec(line);
    if (m) {
      group = m[1]!;
      state = m[2] ?? 'hosts';
      if (!['hosts', 'children', 'vars'].includes(state)) throw new InvError(`section [${m[1]}:${m[2]}] has unknown type: ${state}`, lineNo, col);
      if (!inv.groups.has(group)) {
        if (state === 'vars' && !pending.has(group)) pending.set(group, { line: lineNo, state, parents: [] });
        inv.group(group);
      }
      if (pending.has(group) && state !== 'vars') {
        if (pending.get(group)!.state === 'children') addPendingChildren(group);
        else pending.delete(group);
      }
      return;
    }
    if (line.startsWith('[') && line.endsWith(']')) throw new InvError(`invalid section entry: '${line}' (no spaces allowed in a section header)`, lineNo, col);
    if (state === 'hosts') {
      let tokens: string[];
      try {
        tokens = shlexSplit(line);
      } catch (err) {
        throw new InvError(`cannot read the host line: ${(err as Error).message}`, lineNo, col);
      }
      if (tokens.length === 0) return;
      let expanded: ReturnType<typeof expandHostPattern>;
      try {
        expanded = expandHostPattern(tokens[0]!);
      } catch (err) {
        throw new InvError((err as Error).message, lineNo, col);
      }
      if (tokens[0]!.trim().endsWith(':') && expanded.port === undefined)
        throw new InvError(`invalid host pattern '${tokens[0]}': a trailing ':' must be followed by a port`, lineNo, col);
      const vars: Record<string, unknown> = {};
      for (const t of tokens.slice(1)) {
        const eq = t.indexOf('=');
        if (eq < 0) throw new InvError(`expected key=value host variable assignment, got: ${t}`, lineNo, col + line.indexOf(t));
        vars[t.slice(0, eq)] = pythonLiteral(t.slice(eq + 1));
      }
      for (const h of expanded.hosts) Object.assign(inv.host(h, group, { line: lineNo, col }, expanded.port).vars, vars);
    } else if (state === 'vars') {
      const eq = line.indexOf('=');
      if (eq < 0) throw new InvError(`expected key=value, got: ${line}`, lineNo, col);
      inv.setGroupVar(group, line.slice(0, eq).trim(), pythonLiteral(line.slice(eq + 1).trim()));
    } else {
      const g = GROUPNAME.exec(line);
      if (!g) throw new InvError(`expected a group name, got: ${line}`, lineNo, col);
      const child = g[1]!;
      if (!inv.groups.has(child)) {
        const p = pending.get(child);
        if (p) p.parents.push(group);
        else pending.set(child, { line: lineNo, state: 'children', parents: [group] });
      } else inv.addChild(group, child, { line: lineNo, col });
    }
  });
  for (const [name, p] of pending) {
    if (p.state === 'vars') throw new InvError(`section [${name}:vars] is for a group that is declared nowhere`, p.line);
    throw new InvError(`section [${p.parents[p.parents.length - 1]}:children] includes undefined group: ${name}`, p.line);
  }
}

/** PyYAML's exponent floats need a dot and a signed exponent (`1.0e+3`); `1e3` is a string there. */
const PYYAML_EXP_FLOAT: ScalarTag = {
  tag: 'tag:yaml.org,2002:float',
  default: true,
  test: /^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*[eE][-+][0-9]+$/,
  resolve: (s: string) => parseFloat(s.replace(/_/g, '')),
};

/**
 * YAML as PyYAML (YAML 1.1) reads it: yes/no/on/off booleans, 0755 octal, 1:30 sexagesimal; `1e3` stays a string;
 * dates stay text (ansible-inventory prints a date as its text).
 */
function yamlDoc(text: string): { doc: Document; lines: LineCounter } {
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    version: '1.1',
    lineCounter: lines,
    prettyErrors: false,
    customTags: (tags) => [
      PYYAML_EXP_FLOAT,
      ...tags.filter((t) => {
        if (typeof t !== 'object') return true;
        if (t.tag === 'tag:yaml.org,2002:timestamp') return false;
        return !(t.tag === 'tag:yaml.org,2002:float' && 'format' in t && t.format === 'EXP');
      }),
    ],
  });
  return { doc, lines };
}

function yamlError(doc: Document, lines: LineCounter): InvError | undefined {
  const e = doc.errors[0];
  if (!e) return undefined;
  const at = e.pos?.[0] !== undefined ? lines.linePos(e.pos[0]) : { line: 1, col: 1 };
  return new InvError(e.message.split('\n')[0]!, at.line, at.col);
}

function posOf(node: unknown, lines: LineCounter): { line: number; col: number } {
  const r = (node as Node | undefined)?.range;
  return r ? lines.linePos(r[0]) : { line: 1, col: 1 };
}

function toJS(node: unknown, doc: Document): unknown {
  return node && typeof node === 'object' && 'toJSON' in node ? (node as Node).toJSON(undefined, { doc } as never) : node;
}

/** Ansible's YAML inventory: `group: { hosts: {NAME: vars}, vars: {...}, children: {group: ...} }`. */
function readYamlInventory(inv: Inventory, doc: Document, lines: LineCounter): void {
  const root = doc.contents;
  if (!isMap(root)) throw new InvError('a YAML inventory is a mapping of group names', 1, 1);
  const data = doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown>;
  if (data.plugin) {
    // Only .yml/.yaml plugin configurations are Ansible's (its auto plugin); those are read with ansible-inventory.
    throw new InvError(
      'this looks like an inventory plugin configuration (plugin:), which Ansible reads only from a .yml or .yaml file: rename it',
      posOf(root, lines).line,
    );
  }
  const group = (name: string, node: unknown, _at: { line: number; col: number }): void => {
    if (node !== null && node !== undefined && !isMap(node) && !(isScalar(node) && node.value === null)) return; // Ansible skips it with a warning
    inv.group(name);
    if (!isMap(node)) return;
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      const val = pair.value;
      const where = posOf(pair.key, lines);
      if (isScalar(val) && typeof val.value === 'string' && ['vars', 'children', 'hosts'].includes(key)) {
        // A string stands for a one-entry mapping.
        if (key === 'hosts') for (const h of expandAt(val.value, where)) inv.host(h.name, name, where, h.port);
        else if (key === 'children') (group(val.value, null, where), inv.addChild(name, val.value, where));
        else throw new InvError(`"vars" of group ${name} must be a mapping`, where.line, where.col);
        continue;
      }
      if (val === null || val === undefined || (isScalar(val) && val.value === null)) continue;
      if (!isMap(val)) {
        if (['vars', 'children', 'hosts'].includes(key)) throw new InvError(`"${key}" of group ${name} must be a mapping`, where.line, where.col);
        continue;
      }
      for (const item of val.items) {
        const k = isScalar(item.key) ? item.key.value : undefined;
        const kat = posOf(item.key, lines);
        if (key === 'vars') inv.setGroupVar(name, String(k), toJS(item.value, doc));
        else if (key === 'children') {
          group(String(k), item.value, kat);
          inv.addChild(name, String(k), kat);
        } else if (key === 'hosts') {
          if (typeof k !== 'string') throw new InvError(`host pattern ${String(k)} must be a string (quote it)`, kat.line, kat.col);
          const vars = toJS(item.value, doc);
          if (vars !== null && vars !== undefined && (typeof vars !== 'object' || Array.isArray(vars)))
            throw new InvError(`the variables of host ${k} must be a mapping`, kat.line, kat.col);
          for (const h of expandAt(k, kat)) Object.assign(inv.host(h.name, name, kat, h.port).vars, vars ?? {});
        }
      }
    }
  };
  for (const pair of root.items) group(isScalar(pair.key) ? String(pair.key.value) : '', pair.value, posOf(pair.key, lines));
}

function expandAt(pattern: string, at: { line: number; col: number }): { name: string; port?: number }[] {
  try {
    const { hosts, port } = expandHostPattern(pattern);
    return hosts.map((name) => ({ name, port }));
  } catch (err) {
    throw new InvError((err as Error).message, at.line, at.col);
  }
}

/** `ansible-inventory --list` (the script format): `{_meta: {hostvars}, GROUP: {hosts: [], vars, children: []}}`. */
function readListJson(inv: Inventory, doc: Document, lines: LineCounter): void {
  const root = doc.contents;
  if (!isMap(root)) throw new InvError('expected a mapping of groups', 1, 1);
  const data = doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown>;
  const at = (key: string) => {
    const pair = root.items.find((p) => isScalar(p.key) && p.key.value === key);
    return posOf(pair?.key, lines);
  };
  const hostvars = ((data._meta as { hostvars?: unknown } | undefined)?.hostvars ?? {}) as Record<string, Record<string, unknown>>;
  const pendingChildren: [string, string, { line: number; col: number }][] = [];
  for (const [name, value] of Object.entries(data)) {
    if (name === '_meta') continue;
    const where = at(name);
    inv.group(name);
    const g = Array.isArray(value) ? { hosts: value } : ((value ?? {}) as { hosts?: unknown; vars?: unknown; children?: unknown });
    if (g.hosts !== undefined && !Array.isArray(g.hosts)) throw new InvError(`group ${name}: "hosts" must be a list`, where.line, where.col);
    for (const h of (g.hosts ?? []) as unknown[]) inv.host(String(h), name, where);
    if (g.vars && typeof g.vars === 'object') for (const [k, v] of Object.entries(g.vars)) inv.setGroupVar(name, k, v);
    for (const c of (g.children ?? []) as unknown[]) pendingChildren.push([name, String(c), where]);
  }
  for (const [p, c, where] of pendingChildren) inv.addChild(p, c, where);
  for (const [h, vars] of Object.entries(hostvars)) {
    const host = inv.hosts.get(h);
    if (host && vars && typeof vars === 'object') Object.assign(host.vars, vars);
  }
}

function isListJson(data: unknown): boolean {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return false;
  return Object.entries(data).some(
    ([k, v]) =>
      k === '_meta' ||
      Array.isArray(v) ||
      (v !== null && typeof v === 'object' && (Array.isArray((v as { hosts?: unknown }).hosts) || Array.isArray((v as { children?: unknown }).children))),
  );
}

/** Reads an inventory file (INI, YAML or `ansible-inventory --list` JSON) into groups and hosts. */
function readInventory(file: string, text: string, fromTool?: string): Inventory {
  const inv = new Inventory();
  if (fromTool !== undefined) {
    const y = yamlDoc(text);
    const err = yamlError(y.doc, y.lines);
    const data = err ? undefined : y.doc.toJS({ maxAliasCount: 100 });
    if (err || !isListJson(data))
      throw new InvError(`${fromTool}: ${ANSIBLE_INVENTORY} --list printed something that is not its JSON: ${text.trim().slice(0, 200)}`);
    try {
      readListJson(inv, y.doc, y.lines);
    } catch (e) {
      // Positions in the tool's output mean nothing to a person: name the source and the output instead.
      if (e instanceof InvError) throw new InvError(`${e.message} (in what ${ANSIBLE_INVENTORY} --list printed for it)`, 1, 1, fromTool);
      throw e;
    }
    inv.reconcile();
    return inv;
  }
  const ext = extname(file).toLowerCase();
  let yaml: { doc: Document; lines: LineCounter } | undefined;
  // As Ansible: the yaml plugin takes .yml/.yaml/.json and extension-less files whose content is a YAML mapping;
  // everything else is INI.
  if (['.yml', '.yaml', '.json', ''].includes(ext)) {
    const y = yamlDoc(text);
    const err = yamlError(y.doc, y.lines);
    if (!err && isMap(y.doc.contents)) yaml = y;
    else if (ext !== '') {
      if (err) throw err;
      throw new InvError('a YAML inventory is a mapping of group names', 1, 1);
    }
  }
  if (yaml) {
    if (isListJson(yaml.doc.toJS({ maxAliasCount: 100 }))) readListJson(inv, yaml.doc, yaml.lines);
    else readYamlInventory(inv, yaml.doc, yaml.lines);
  } else readIni(inv, text);
  inv.reconcile();
  return inv;
}

// ---------------------------------------------------------------------------------------------------------------
// group_vars / host_vars

const VARS_EXTS = ['.yml', '.yaml', '.json'];

/** Ansible's find_vars_files(): NAME, NAME.yml, NAME.yaml, NAME.json (first that exists), or the files of a directory. */
function varsFiles(dir: string, name: string): string[] {
  for (const ext of ['', ...VARS_EXTS]) {
    const p = join(dir, name + ext);
    let st;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    return st.isDirectory() ? dirFiles(p) : [p];
  }
  return [];
}

function dirFiles(dir: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir).sort()) {
    if (n.startsWith('.') || n.endsWith('~')) continue;
    const p = join(dir, n);
    const ext = extname(n);
    const st = statSync(p);
    if (st.isDirectory() && !ext) out.push(...dirFiles(p));
    else if (st.isFile() && (!ext || VARS_EXTS.includes(ext))) out.push(p);
  }
  return out;
}

function readVarsFile(file: string): Record<string, unknown> {
  const text = readFileSync(file, 'utf8');
  const { doc, lines } = yamlDoc(text);
  const err = yamlError(doc, lines);
  if (err) throw new InvError(err.message, err.line, err.col, file);
  const data = doc.toJS({ maxAliasCount: 100 });
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new InvError('a vars file must hold a mapping of variables', 1, 1, file);
  return data as Record<string, unknown>;
}

class VarsDir {
  private readonly cache = new Map<string, Record<string, unknown>>();
  /** `base` undefined: no vars files (the variables came merged already). */
  constructor(private readonly base: string | undefined) {}

  get(kind: 'group_vars' | 'host_vars', name: string): Record<string, unknown> {
    const key = `${kind}/${name}`;
    let v = this.cache.get(key);
    if (!v) {
      v = {};
      if (this.base === undefined) return v;
      const dir = join(this.base, kind);
      let isDir = false;
      try {
        isDir = statSync(dir).isDirectory();
      } catch {
        /* none */
      }
      if (isDir && !name.startsWith('/')) for (const f of varsFiles(dir, name)) Object.assign(v, readVarsFile(f));
      this.cache.set(key, v);
    }
    return v;
  }
}

/** A host's variables, merged in Ansible's order (see the notes at the top). */
function mergedVars(inv: Inventory, vd: VarsDir, host: InvHost): Record<string, unknown> {
  const groups = sortGroups(inv.groupsOf(host.name).filter((g) => g.name !== 'all'));
  const out: Record<string, unknown> = {};
  Object.assign(out, inv.groups.get('all')!.vars);
  for (const g of groups) Object.assign(out, g.vars);
  Object.assign(out, vd.get('group_vars', 'all'));
  for (const g of groups) Object.assign(out, vd.get('group_vars', g.name));
  Object.assign(out, host.vars);
  Object.assign(out, vd.get('host_vars', host.name));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// To graywave hosts

/** `-o ProxyJump=X`, `-J X`, or a `ssh -W %h:%p … X` ProxyCommand in ssh options; undefined when none. */
export function jumpFromSshArgs(args: string): string | undefined {
  const words = parseShell(args).filter((w): w is string => typeof w === 'string');
  const option = (o: string): string | undefined => {
    const m = /^(\w+)\s*=?\s*(.*)$/s.exec(o.trim());
    if (!m) return undefined;
    const key = m[1]!.toLowerCase();
    if (key === 'proxyjump') return m[2]!.trim();
    if (key === 'proxycommand') return jumpFromProxyCommand(m[2]!);
    return undefined;
  };
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    let found: string | undefined;
    if (w === '-J') found = words[++i];
    else if (w.startsWith('-J')) found = w.slice(2);
    else if (w === '-o') found = option(words[++i] ?? '');
    else if (w.startsWith('-o')) found = option(w.slice(2));
    if (found) return found;
  }
  return undefined;
}

/** `ssh [-q] [-p PORT] [-l USER] [-i KEY] -W %h:%p [USER@]HOST` → `[USER@]HOST[:PORT]`; undefined for other commands. */
function jumpFromProxyCommand(cmd: string): string | undefined {
  const w = parseShell(cmd).filter((x): x is string => typeof x === 'string');
  if (basename(w[0] ?? '') !== 'ssh' || !w.includes('-W')) return undefined;
  let user: string | undefined;
  let port: string | undefined;
  let host: string | undefined;
  for (let i = 1; i < w.length; i++) {
    const a = w[i]!;
    if (a === '-p') port = w[++i];
    else if (a === '-l') user = w[++i];
    else if (['-W', '-i', '-F', '-o', '-J'].includes(a)) i++;
    else if (a.startsWith('-')) continue;
    else host = a;
  }
  if (!host) return undefined;
  return `${user && !host.includes('@') ? `${user}@` : ''}${host}${port ? `:${port}` : ''}`;
}

/**
 * Passwords and vaulted values never become graywave vars (vars reach plans, logs and the journal; secrets come
 * from env vars or files): Ansible's password variables and any `!vault` / `$ANSIBLE_VAULT;` value are left out.
 */
const SECRET_VARS = /^ansible_(ssh_|become_|sudo_|su_)?pass(word)?$/;
const isVaulted = (v: unknown) => typeof v === 'string' && v.startsWith('$ANSIBLE_VAULT;');

const CONNECTION_VARS = [
  'ansible_host',
  'ansible_ssh_host',
  'ansible_port',
  'ansible_ssh_port',
  'ansible_user',
  'ansible_ssh_user',
  'ansible_ssh_private_key_file',
  'ansible_private_key_file',
];

/** Everything read from an inventory, for tests and the loader. */
export interface AnsibleInventory {
  /** Hosts of the group (all hosts without one), in Ansible's order, with their merged variables. */
  hosts: { name: string; vars: Record<string, unknown>; groups: string[]; at: { line: number; col: number } }[];
  groups: string[];
}

// ---------------------------------------------------------------------------------------------------------------
// Sources only Ansible can read: inventory scripts, plugin configurations (`plugin: ...`), inventory directories.
// They are not re-implemented: Ansible's own `ansible-inventory --list` reads them (running the script or the plugin,
// with Ansible's group_vars/host_vars handling), and its JSON goes through the same `--list` reader as a saved file.

/** Why a source must be read by `ansible-inventory` itself; undefined when graywave reads it natively. */
export function ansibleToolReason(file: string): string | undefined {
  let st;
  try {
    st = statSync(file);
  } catch {
    return undefined;
  }
  if (st.isDirectory()) return 'an inventory directory';
  if (!st.isFile()) return undefined;
  // Ansible's script plugin takes an executable file that starts with `#!` (and runs it with --list); an INI file
  // that merely has the x bit is still read as INI, by Ansible as here.
  if (st.mode & 0o111 && readFileSync(file, 'latin1').startsWith('#!')) return 'an executable inventory script';
  // Ansible's auto plugin: a .yml/.yaml file whose top-level `plugin:` names the inventory plugin to load.
  if (/\.ya?ml$/i.test(file)) {
    const { doc } = yamlDoc(readFileSync(file, 'utf8'));
    const plugin = isMap(doc.contents) ? doc.contents.get('plugin') : undefined;
    if (typeof plugin === 'string' && plugin !== '') return `an inventory plugin configuration (plugin: ${plugin})`;
  }
  return undefined;
}

const ANSIBLE_INVENTORY = 'ansible-inventory';
const TOOL_TIMEOUT_MS = 120_000;

/**
 * `ansible-inventory --list -i FILE`: its JSON, or an InvError naming the file (not installed, failed, unparsed).
 * Ansible by default only warns about a source it cannot parse and lists an empty inventory: here that is an error.
 */
function ansibleInventoryList(file: string, reason: string): string {
  const r = spawnSync(ANSIBLE_INVENTORY, ['--list', '-i', file], {
    cwd: dirname(file),
    encoding: 'utf8',
    timeout: TOOL_TIMEOUT_MS,
    maxBuffer: 256 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ANSIBLE_INVENTORY_UNPARSED_FAILED: 'True', ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED: 'True', ANSIBLE_NOCOLOR: 'True' },
  });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new InvError(
      `${file} is ${reason}, which only Ansible can read, and ${ANSIBLE_INVENTORY} is not installed (Debian: apt-get install ansible-core; or pip install ansible-core). ` +
        `Or save what \`${ANSIBLE_INVENTORY} --list -i ${file}\` prints elsewhere into a .json file and use that`,
    );
  }
  if (r.error || r.status !== 0) {
    const why = r.error
      ? r.error.message.includes('ETIMEDOUT')
        ? `no answer within ${TOOL_TIMEOUT_MS / 1000} s`
        : r.error.message
      : `exit ${r.status ?? r.signal}`;
    const err = String(r.stderr ?? '')
      .trim()
      .split('\n')
      .filter(Boolean)
      .slice(-4)
      .join(' | ');
    throw new InvError(`${file} is ${reason}; \`${ANSIBLE_INVENTORY} --list -i ${file}\` failed (${why})${err ? `: ${err}` : ''}`);
  }
  return String(r.stdout);
}

/** Reads an inventory and its group_vars/host_vars. Throws InvError (with line/col and optionally another file). */
function readAnsible(file: string, group?: string): AnsibleInventory & { inv: Inventory; tool?: string } {
  const reason = ansibleToolReason(file);
  // What ansible-inventory prints has every host's variables merged already (group_vars/host_vars included).
  const inv = reason ? readInventory(`${file}.list.json`, ansibleInventoryList(file, reason), file) : readInventory(file, readFileSync(file, 'utf8'));
  if (group !== undefined && !inv.groups.has(group)) throw new InvError(`group ${group} is not in the inventory`);
  const vd = new VarsDir(reason ? undefined : dirname(file));
  const names = inv.hostsOf(group ?? 'all');
  return {
    inv,
    ...(reason ? { tool: reason } : {}),
    groups: [...inv.groups.keys()],
    hosts: names.map((n) => {
      const h = inv.hosts.get(n)!;
      return { name: n, vars: mergedVars(inv, vd, h), groups: inv.groupsOf(n).map((g) => g.name), at: h.at };
    }),
  };
}

/** The groups of an inventory (for a message about a group it does not have). */
function read0(file: string): string[] {
  return readAnsible(file).groups;
}

/** The same inventory as `ansible-inventory --list` shows it: hosts with their merged vars (for tests and tools). */
export function ansibleInventory(file: string, group?: string): AnsibleInventory {
  const { hosts, groups } = readAnsible(file, group);
  return { hosts, groups };
}

/**
 * `inventory: { ansible: FILE, group?: NAME }` → graywave hosts. Problems are added to `issues`: an inventory that
 * cannot be read, an unknown or empty group at the playbook's `inventory` key; a problem inside the inventory at
 * its own FILE:LINE:COL. Returns undefined when anything is wrong (never an empty fleet).
 */
export function ansibleHosts(src: Source, raw: unknown, dir: string, issues: ConfigIssue[]): AnsibleHost[] | undefined {
  const spec = inventoryAnsible.safeParse(raw);
  if (!spec.success) {
    src.add(
      ['inventory'],
      `inventory: ${spec.error.issues.map((i) => `${i.path.join('.') || 'ansible'}: ${i.message}`).join('; ')} (give { ansible: FILE, group: NAME })`,
    );
    return undefined;
  }
  const file = resolve(dir, spec.data.ansible);
  try {
    const st = statSync(file);
    if (!st.isFile() && !st.isDirectory()) throw new Error('not a regular file');
  } catch (err) {
    src.add(
      ['inventory', 'ansible'],
      `Ansible inventory ${spec.data.ansible} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
    return undefined;
  }
  let read: ReturnType<typeof readAnsible>;
  try {
    read = readAnsible(file, spec.data.group);
  } catch (err) {
    if (!(err instanceof InvError)) throw err;
    if (
      err.message.startsWith('group ') &&
      spec.data.group !== undefined &&
      err.file === undefined &&
      err.line === 1 &&
      err.message.endsWith('is not in the inventory')
    ) {
      const known = read0(file).filter((g) => g !== 'all' && g !== 'ungrouped');
      src.add(
        ['inventory', 'group'],
        `group ${spec.data.group} is not in the Ansible inventory ${spec.data.ansible} (its groups: ${known.join(', ') || 'none'})`,
      );
    } else if (err.file === undefined && ansibleToolReason(file)) src.add(['inventory', 'ansible'], err.message);
    else issues.push({ file: err.file ?? file, line: err.line, col: err.col, message: err.message });
    return undefined;
  }
  if (read.hosts.length === 0) {
    src.add(
      spec.data.group !== undefined ? ['inventory', 'group'] : ['inventory', 'ansible'],
      `${spec.data.group !== undefined ? `group ${spec.data.group} of` : ''} the Ansible inventory ${spec.data.ansible} has no hosts: a release needs at least one`.trim(),
    );
    return undefined;
  }
  const selected = spec.data.group !== undefined ? new Set(read.inv.descendants(spec.data.group).map((g) => g.name)) : undefined;
  const out = read.hosts.map((h) => hostOf(h, read, selected, file, issues));
  return out.every((h) => h !== undefined) ? (out as AnsibleHost[]) : undefined;
}

type AnsibleRead = ReturnType<typeof readAnsible>;

/**
 * One host of the inventory as a graywave host: address and port, vars (no connection or secret ones), a label per
 * group and `group` (its most specific group in the selection), ssh user, key and jump host. Undefined after
 * reporting its problem in `issues`.
 */
function hostOf(
  h: AnsibleRead['hosts'][number],
  read: AnsibleRead,
  selected: Set<string> | undefined,
  file: string,
  issues: ConfigIssue[],
): AnsibleHost | undefined {
  // A host's line in the file; for ansible-inventory's output (whose lines are not the file's), the file itself.
  const at = read.tool ? { line: 1, col: 1 } : { line: h.at.line, col: h.at.col };
  const v = h.vars;
  const str = (k: string[]) => {
    for (const key of k) if (v[key] !== undefined && v[key] !== null) return String(v[key]);
    return undefined;
  };
  const portText = str(['ansible_port', 'ansible_ssh_port']);
  const address =
    v.ansible_connection === 'local' && str(['ansible_host', 'ansible_ssh_host']) === undefined
      ? 'local'
      : (str(['ansible_host', 'ansible_ssh_host']) ?? h.name);
  const vars: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) if (!CONNECTION_VARS.includes(k) && !SECRET_VARS.test(k) && !isVaulted(val)) vars[k] = val;
  const labels: Record<string, string> = {};
  const mine = read.inv.groupsOf(h.name).filter((g) => g.name !== 'all');
  for (const g of mine) labels[g.name] = 'true';
  const candidates = mine.filter((g) => (selected ? selected.has(g.name) : true));
  const specific = [...candidates].sort((a, b) => b.depth - a.depth || a.order - b.order)[0];
  labels.group = specific?.name ?? 'ungrouped';
  const parsed = hostSchema.safeParse({ name: h.name, address, port: portText === undefined ? undefined : Number(portText), vars, labels });
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      const what =
        i.path[0] === 'address'
          ? `address ${JSON.stringify(address)} (ansible_host)`
          : i.path[0] === 'port'
            ? `port ${JSON.stringify(portText)} (ansible_port)`
            : i.path[0] === 'name'
              ? `host name ${JSON.stringify(h.name)}`
              : String(i.path.join('.'));
      issues.push({ file, ...at, message: `host ${h.name}: ${what}: ${i.message}${read.tool ? ` (as ${ANSIBLE_INVENTORY} --list gives it)` : ''}` });
    }
    return undefined;
  }
  const ssh: NonNullable<AnsibleHost['ssh']> = {};
  const user = str(['ansible_user', 'ansible_ssh_user']);
  if (user !== undefined) ssh.user = user;
  const key = str(['ansible_ssh_private_key_file', 'ansible_private_key_file']);
  if (key !== undefined) ssh.identityFile = key;
  const sshArgs = [str(['ansible_ssh_common_args']), str(['ansible_ssh_extra_args'])].filter((a): a is string => !!a);
  const jump = sshArgs.map(jumpFromSshArgs).find(Boolean);
  if (jump) ssh.jumpHost = jump;
  else if (sshArgs.some((a) => /proxycommand/i.test(a))) {
    // Never connect directly to a host the inventory says is only reachable through a proxy.
    issues.push({
      file,
      ...at,
      message: `host ${h.name}: the ProxyCommand in ansible_ssh_common_args is not one graywave can follow (only "ssh -W %h:%p [user@]bastion"): use -o ProxyJump=[user@]bastion[:port]`,
    });
    return undefined;
  }
  return Object.keys(ssh).length ? { ...(parsed.data as Host), ssh } : (parsed.data as Host);
}
