// Types of dubbo-provider-sim.mjs (plain JavaScript so that the Dubbo-shaped test app, a node child process, can use it).
export interface SimUrl {
  protocol: string;
  host: string;
  port: number;
  path: string;
  params: Record<string, string>;
}
export function parseUrl(text: string): SimUrl | undefined;
export function formatUrl(u: SimUrl): string;
export function serviceKeyOf(u: SimUrl): string;
export function serviceRuleName(u: SimUrl): string;
export function isLegacy(u: SimUrl): boolean;
export function ruleConfigurators(text: string | undefined): SimUrl[];
export function reexported(origin: SimUrl, rules: { overrides?: string[]; application?: string; service?: string }): SimUrl;
export function serviceInfo(u: SimUrl): {
  name: string;
  group?: string;
  version?: string;
  protocol: string;
  port: number;
  path: string;
  params: Record<string, string>;
};
