import { describe, expect, it } from 'vitest';
import { findServer, listUpstreams, NginxConfigError, setServerDown } from '../../src/providers/lb/nginx-config.js';

const CONF = `# order service
upstream order_backend {
    zone order 64k;   # shared memory
    server 10.0.0.5:8080 weight=5 max_fails=3 fail_timeout=10s;  # app-01
    server 10.0.0.6:8080;
    # server 10.0.0.7:8080;   (retired, commented out)
    server 10.0.0.70:8080 backup;
    keepalive 16;
}

upstream order_backend_green {
    server 10.0.0.5:8080;
    server 10.0.0.6:8080 down;
}

server {
    listen 80;
    set $x "upstream order_backend { server 10.0.0.5:8080; }";
    location / { proxy_pass http://order_backend; }
}
`;

describe('nginx upstream editing', () => {
  it('lists upstreams and their server lines, ignoring comments and strings', () => {
    const ups = listUpstreams(CONF);
    expect(ups.map((u) => u.name)).toEqual(['order_backend', 'order_backend_green']);
    expect(ups[0]!.servers.map((s) => s.address)).toEqual(['10.0.0.5:8080', '10.0.0.6:8080', '10.0.0.70:8080']);
    expect(ups[0]!.servers[0]!.params).toEqual(['weight=5', 'max_fails=3', 'fail_timeout=10s']);
    expect(ups[1]!.servers[1]!.down).toBe(true);
  });

  it('marks only the matching line of the named upstream down, keeping every other byte', () => {
    const { text, changed } = setServerDown(CONF, 'order_backend', '10.0.0.5:8080', true);
    expect(changed).toBe(true);
    expect(text).toBe(CONF.replace('fail_timeout=10s;  # app-01', 'fail_timeout=10s down;  # app-01'));
    // the same address in the other upstream is untouched
    expect(findServer(text, 'order_backend_green', '10.0.0.5:8080').down).toBe(false);
    expect(findServer(text, 'order_backend', '10.0.0.5:8080')).toMatchObject({ down: true, line: 4 });
  });

  it('does not match a prefix of another address (10.0.0.7 vs 10.0.0.70)', () => {
    expect(() => findServer(CONF, 'order_backend', '10.0.0.7:8080')).toThrow(
      /no "server 10.0.0.7:8080" line in upstream order_backend \(servers: 10.0.0.5:8080, 10.0.0.6:8080, 10.0.0.70:8080\)/,
    );
    const { text } = setServerDown(CONF, 'order_backend', '10.0.0.70:8080', true);
    expect(text).toContain('server 10.0.0.70:8080 backup down;');
  });

  it('round-trips: down then up gives the original file exactly', () => {
    for (const addr of ['10.0.0.5:8080', '10.0.0.6:8080', '10.0.0.70:8080']) {
      const down = setServerDown(CONF, 'order_backend', addr, true).text;
      expect(down).not.toBe(CONF);
      expect(setServerDown(down, 'order_backend', addr, false)).toEqual({ text: CONF, changed: true });
    }
  });

  it('is idempotent: already down / already up changes nothing', () => {
    expect(setServerDown(CONF, 'order_backend_green', '10.0.0.6:8080', true)).toEqual({ text: CONF, changed: false });
    expect(setServerDown(CONF, 'order_backend', '10.0.0.6:8080', false)).toEqual({ text: CONF, changed: false });
  });

  it('removes a `down` that was written in the middle of the parameters', () => {
    const conf = 'upstream u {\n  server a:1 down weight=2;\n  server b:1;\n}\n';
    expect(setServerDown(conf, 'u', 'a:1', false).text).toBe('upstream u {\n  server a:1 weight=2;\n  server b:1;\n}\n');
  });

  it('handles a server line split over lines with a comment inside', () => {
    const conf = 'upstream u {\n  server a:1   # primary\n      weight=2;\n}\n';
    const down = setServerDown(conf, 'u', 'a:1', true).text;
    expect(down).toBe('upstream u {\n  server a:1   # primary\n      weight=2 down;\n}\n');
    expect(setServerDown(down, 'u', 'a:1', false).text).toBe(conf);
  });

  it('works with upstreams nested in http and stream blocks and quoted names', () => {
    const conf = 'http {\n\tupstream "web" { server unix:/run/app.sock; }\n}\nstream {\n\tupstream db { server 127.0.0.1:5432; }\n}\n';
    expect(setServerDown(conf, 'web', 'unix:/run/app.sock', true).text).toContain('server unix:/run/app.sock down; }');
    expect(setServerDown(conf, 'db', '127.0.0.1:5432', true).text).toContain('server 127.0.0.1:5432 down; }');
  });

  it('says what it found when the upstream is missing, duplicated or the file is malformed', () => {
    expect(() => findServer(CONF, 'payment', '10.0.0.5:8080')).toThrow(
      /no "upstream payment \{ … \}" block in the file \(upstreams found: order_backend, order_backend_green\)/,
    );
    expect(() => findServer('upstream u { server a:1; }\nupstream u { server a:1; }\n', 'u', 'a:1')).toThrow(/defined 2 times/);
    expect(() => findServer('upstream u { server a:1; server a:1 backup; }', 'u', 'a:1')).toThrow(/appears 2 times/);
    expect(() => findServer('upstream u { server a:1 }', 'u', 'a:1')).toThrow(NginxConfigError);
    expect(() => findServer('upstream u { server a:1;', 'u', 'a:1')).toThrow(/missing "}"/);
    expect(() => findServer('upstream u { server "a:1; }', 'u', 'a:1')).toThrow(/unterminated quoted string at line 1/);
  });

  it('keeps CRLF line endings and ${var} braces intact', () => {
    const conf = 'upstream u {\r\n  server a:1;\r\n}\r\nmap $x $y { default "${x}"; }\r\n';
    const down = setServerDown(conf, 'u', 'a:1', true).text;
    expect(down).toBe('upstream u {\r\n  server a:1 down;\r\n}\r\nmap $x $y { default "${x}"; }\r\n');
    expect(setServerDown(down, 'u', 'a:1', false).text).toBe(conf);
  });
});
