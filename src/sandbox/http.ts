import http from 'node:http';

/**
 * One HTTP request of the sandbox's short-lived processes (the `graywave sandbox …` commands a playbook step runs,
 * a host registering itself), on node:http rather than fetch. fetch loads undici on first use and compiles its
 * HTTP parser to WebAssembly; a process that used it took about 0.4 s longer to start its first request and about
 * 1 s longer to exit (measured on the shared 2-core machine, Node 20), on every deploy step of a demo. No keep-alive
 * unless an `agent` says so (the BFE's registry client, a long-lived process): one request, one connection, nothing
 * left holding the process.
 */
export interface SandboxResponse {
  status: number;
  text: string;
}

export function request(
  url: string,
  o: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs: number; agent?: http.Agent },
): Promise<SandboxResponse> {
  return new Promise((resolve, reject) => {
    // The whole exchange within timeoutMs (as AbortSignal.timeout did), not only each idle gap.
    const timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer within ${o.timeoutMs / 1000}s`), { name: 'TimeoutError' })), o.timeoutMs);
    const fail = (err: Error) => (clearTimeout(timer), reject(err));
    const req = http.request(url, { method: o.method ?? 'GET', headers: o.headers, agent: o.agent ?? false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => (clearTimeout(timer), resolve({ status: res.statusCode ?? 0, text })));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end(o.body);
  });
}
