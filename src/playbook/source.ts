import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { ConfigIssue } from '../errors.js';
import { yamlProblems } from './suggest.js';

export type Path = readonly (string | number)[];

/** A parsed YAML file that remembers where every value came from, so problems can be reported as FILE:LINE:COL. */
export class Source {
  readonly doc: Document;
  private readonly lines = new LineCounter();
  readonly issues: ConfigIssue[] = [];

  constructor(
    readonly file: string,
    text: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lines, uniqueKeys: true, prettyErrors: false, logLevel: 'error' });
    // One issue per syntax problem (the first error; the rest follow from it), with a hint (src/playbook/messages.ts).
    const at = (offset: number) => this.lines.linePos(offset);
    for (const p of yamlProblems(this.doc.errors, text, at)) this.issues.push({ file, ...p });
    if (!this.doc.errors.length) {
      for (const e of this.doc.warnings) {
        const w = e.linePos?.[0] ?? (e.pos?.[0] !== undefined ? at(e.pos[0]) : { line: 1, col: 1 });
        this.issues.push({ file, line: w.line, col: w.col, message: e.message.split('\n')[0]! });
      }
    }
    this.text = text;
  }

  private readonly text: string;

  /** The value's text as written in the file (`3.10` for a number read as 3.1; `{{host.name}}` read as a mapping). */
  rawText(path: Path): string | undefined {
    const node = this.find(path);
    if (!node?.range) return undefined;
    return this.text.slice(node.range[0], node.range[1]);
  }

  /** Plain JS data; alias bombs are refused (the yaml library counts alias expansions). */
  data(): unknown {
    try {
      return this.doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      this.add([], `cannot read the YAML: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** The node at `path`, or the deepest existing ancestor. With `key`, the key node of the last segment. */
  private find(path: Path, key = false): Node | undefined {
    let node: unknown = this.doc.contents;
    let found: Node | undefined = node as Node | undefined;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) return found;
        if (key && i === path.length - 1) return pair.key as Node;
        node = pair.value ?? pair.key;
      } else if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg];
        if (node === undefined) return found;
      } else {
        return found;
      }
      if (node && typeof node === 'object' && 'range' in (node as object)) found = node as Node;
    }
    return found;
  }

  position(path: Path, opts: { key?: boolean; offset?: number } = {}): { line: number; col: number } {
    const node = this.find(path, opts.key);
    const start = node?.range?.[0] ?? 0;
    let offset = opts.offset ?? 0;
    // A quoted scalar's text starts one character after its range.
    if (offset && isScalar(node) && (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE')) offset += 1;
    if (offset && isScalar(node) && node.type !== 'PLAIN' && node.type !== 'QUOTE_DOUBLE' && node.type !== 'QUOTE_SINGLE') offset = 0;
    return this.lines.linePos(start + offset);
  }

  add(path: Path, message: string, opts: { key?: boolean; offset?: number } = {}): void {
    const at = this.position(path, opts);
    this.issues.push({ file: this.file, line: at.line, col: at.col, message });
  }

  /** Every string scalar value (not keys) with its path, for template checks. */
  strings(): { path: (string | number)[]; value: string }[] {
    const out: { path: (string | number)[]; value: string }[] = [];
    const walk = (node: unknown, path: (string | number)[]): void => {
      if (isScalar(node)) {
        if (typeof node.value === 'string') out.push({ path, value: node.value });
      } else if (isMap(node)) {
        for (const pair of node.items) if (isScalar(pair.key)) walk(pair.value, [...path, String(pair.key.value)]);
      } else if (isSeq(node)) {
        node.items.forEach((item, i) => walk(item, [...path, i]));
      }
    };
    walk(this.doc.contents, []);
    return out;
  }
}
