/**
 * Which HTTP/2 server our plaintext HTTP/2 runs on — the policy server's gRPC front door and
 * the proxy's h2c listener alike: our own (http2-server-connection.ts, the default), or
 * Node's `node:http2` when the environment says `SWITCHBOARD_HTTP2_SERVER=node`, an
 * operator's way back should a client meet a difference between them. Worker processes
 * inherit the environment, so all of them agree.
 */

/** The HTTP/2 server implementations there are. */
export type Http2ServerKind = 'own' | 'node';

/**
 * Reads `SWITCHBOARD_HTTP2_SERVER` (unset or empty: `own`). Called once at start.
 * @throws Error for any other value than own or node, naming the two that work
 */
export function http2ServerFromEnvironment(env: NodeJS.ProcessEnv = process.env): Http2ServerKind {
  const value = env['SWITCHBOARD_HTTP2_SERVER'];
  if (value === undefined || value === '' || value === 'own') return 'own';
  if (value === 'node') return 'node';
  throw new Error(`SWITCHBOARD_HTTP2_SERVER must be own or node, got ${JSON.stringify(value)}`);
}
