/**
 * What a type (provider, monitor, gate, step kind, routing rule, state backend) tells about itself for the
 * reference (`graywave explain`, docs/reference.md): kept next to its schema, in its own file. Types, defaults and
 * whether an option is required come from the zod schema itself (src/reference/zod-info.ts).
 */
export interface TypeDoc {
  /** One or two sentences: what it does to the outside system. */
  summary: string;
  /** The system and version(s) the tests run it against, and how (real server or recorded shapes). */
  checkedAgainst: string;
  /** A YAML example of the entry (for providers: the value under its name in `providers:`). */
  example: string;
  /** Descriptions of options, by key (`check.mqadmin` for nested ones); zod `.describe()` texts are used too. */
  options?: Record<string, string>;
}

/** What a provider step will read and write for one host, resolved for the plan (no contact). */
export interface ProviderEffects {
  drain?: string;
  /** The read-back that decides "drained". */
  check?: string;
  restore?: string;
  relabel?: string;
  /** Monitors: what a query reads. */
  reads?: string;
}

export interface DescribeContext {
  /** The host (a structural type: this file imports nothing, so the registries' types can use it). */
  host: { name: string; address: string; port?: number; vars: Record<string, unknown>; labels: Record<string, string> };
  /** Renders a template for this host (not shell-quoted). */
  render(template: string): string;
}
