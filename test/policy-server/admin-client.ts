/**
 * A plain HTTP client for the admin endpoint in tests: one request per connection (no
 * keep-alive), so that closing a server is never held up by the test's own sockets.
 */
import { request } from 'node:http';

export interface AdminAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The raw body; empty for HEAD. */
  readonly text: string;
  /** The body parsed as JSON; undefined when empty. */
  readonly body: unknown;
}

/** Sends `method path` to `address` (`HOST:PORT`) and resolves with the answer; rejects after `timeoutMs`. */
export function adminRequest(
  address: string,
  path: string,
  method = 'GET',
  timeoutMs = 5_000,
): Promise<AdminAnswer> {
  const url = new URL(path, `http://${address}`);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, timeout: timeoutMs }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          text,
          body: text === '' ? undefined : JSON.parse(text),
        }),
      );
      response.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} took over ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** GET `path` and the parsed body. */
export async function adminGet(address: string, path: string): Promise<AdminAnswer> {
  return adminRequest(address, path, 'GET');
}
