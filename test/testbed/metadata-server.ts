/**
 * A fake GCE metadata server for one test-bed VM: what `curl -H 'Metadata-Flavor: Google'
 * http://$GCE_METADATA_HOST/computeMetadata/v1/instance/service-accounts/default/token` answers
 * on a VM with (or without) a service account. Strict as the real one: without the header (or
 * with X-Forwarded-For) 403, a VM without a service account 404, anything else it does not serve 404.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface VmServiceAccount {
  email: string;
  /** The access token the VM's metadata server hands out. */
  token: string;
}

const PREFIX = '/computeMetadata/v1/instance/service-accounts/';
/** What the real server answers without the header (its body, shortened). */
const MISSING_HEADER = 'Missing Metadata-Flavor:Google header.';

export class MetadataServer {
  #server: http.Server | undefined;
  #account: VmServiceAccount | undefined;

  /** "127.0.0.1:PORT": what GCE_METADATA_HOST holds. */
  get host(): string {
    const address = this.#server?.address() as AddressInfo | null | undefined;
    if (address == null) throw new Error('the metadata server is not listening');
    return `127.0.0.1:${address.port}`;
  }

  /** The service account the VM has (undefined: none). */
  setServiceAccount(account: VmServiceAccount | undefined): void {
    if (account !== undefined && (account.email === '' || account.token === '')) throw new Error('a service account needs an email and a token');
    this.#account = account === undefined ? undefined : { ...account };
  }

  async start(): Promise<void> {
    const server = http.createServer((request, response) => this.#answer(request, response));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #answer(request: http.IncomingMessage, response: http.ServerResponse): void {
    response.setHeader('Metadata-Flavor', 'Google');
    const send = (status: number, body: string, type = 'text/html; charset=UTF-8'): void => {
      response.writeHead(status, { 'Content-Type': type });
      response.end(body);
    };
    if (request.headers['metadata-flavor'] !== 'Google' || request.headers['x-forwarded-for'] !== undefined) {
      send(403, `Your client does not have permission to get URL ${request.url ?? ''} from this server. ${MISSING_HEADER}\n`);
      return;
    }
    if (request.method !== 'GET') {
      send(405, 'Method not allowed\n');
      return;
    }
    const url = new URL(request.url ?? '/', 'http://metadata.google.internal');
    const match = url.pathname.startsWith(PREFIX) ? /^([^/]+)\/(token|email)$/.exec(url.pathname.slice(PREFIX.length)) : null;
    const account = this.#account;
    if (match === null || account === undefined || (match[1] !== 'default' && match[1] !== account.email)) {
      send(404, `The requested URL ${url.pathname} was not found on this server.\n`);
      return;
    }
    if (match[2] === 'email') send(200, account.email, 'application/text');
    else send(200, JSON.stringify({ access_token: account.token, expires_in: 3599, token_type: 'Bearer' }), 'application/json');
  }
}
