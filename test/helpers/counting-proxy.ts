/**
 * An HTTP proxy in front of an object-store emulator that forwards every request and counts
 * them (total and by method), so tests and benchmarks can tell how many object-store requests
 * an operation costs. Point the client's apiEndpoint at `endpoint`.
 *
 * For tests of error paths it can also answer a matching request itself with a given status,
 * without forwarding it (`failNext`); such requests are counted too.
 */
import http from 'node:http';
import type net from 'node:net';

export interface RequestCounts {
  total: number;
  byMethod: Record<string, number>;
}

export interface SeenRequest {
  method: string;
  /** Path and query as the client sent them. */
  url: string;
}

export interface CountingProxy {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  counts(): RequestCounts;
  /** Requests since the last reset, oldest first. */
  requests(): readonly SeenRequest[];
  /** Body bytes since the last reset: `up` from the clients (uploads), `down` to them (downloads). */
  bytes(): { up: number; down: number };
  reset(): void;
  /** Answers the next `times` requests that match with `status` (and a JSON error body with `message`) instead of forwarding them. */
  failNext(match: (request: SeenRequest) => boolean, status: number, times?: number, message?: string): void;
  close(): Promise<void>;
}

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const upstream = new URL(target);
  let seen: SeenRequest[] = [];
  let bytes = { up: 0, down: 0 };
  let proxyOrigin = '';
  let failures: { match: (request: SeenRequest) => boolean; status: number; left: number; message: string | undefined }[] = [];

  const server = http.createServer((req, res) => {
    const request: SeenRequest = { method: req.method ?? 'GET', url: req.url ?? '/' };
    seen.push(request);
    const failure = failures.find((f) => f.left > 0 && f.match(request));
    if (failure !== undefined) {
      failure.left--;
      req.resume();
      const body = JSON.stringify({ error: { code: failure.status, message: failure.message ?? `injected by the test proxy (HTTP ${failure.status})` } });
      res.writeHead(failure.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const forward = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (answer) => {
        // A resumable upload's session URL names the emulator: rewritten, its chunks come through here too.
        const location = answer.headers.location;
        const headers = typeof location === 'string' && location.startsWith(upstream.origin) ? { ...answer.headers, location: `${proxyOrigin}${location.slice(upstream.origin.length)}` } : answer.headers;
        res.writeHead(answer.statusCode ?? 502, headers);
        answer.on('data', (chunk: Buffer) => (bytes.down += chunk.length));
        answer.pipe(res);
      },
    );
    forward.on('error', (error) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${error.message}`);
    });
    req.on('data', (chunk: Buffer) => (bytes.up += chunk.length));
    req.pipe(forward);
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  proxyOrigin = `http://127.0.0.1:${port}`;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts() {
      const byMethod: Record<string, number> = {};
      for (const r of seen) byMethod[r.method] = (byMethod[r.method] ?? 0) + 1;
      return { total: seen.length, byMethod };
    },
    requests: () => [...seen],
    bytes: () => ({ ...bytes }),
    reset() {
      seen = [];
      bytes = { up: 0, down: 0 };
      failures = [];
    },
    failNext(match, status, times = 1, message) {
      failures.push({ match, status, left: times, message });
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
    },
  };
}
