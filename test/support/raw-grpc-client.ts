/**
 * A real @grpc/grpc-js client for tests, making raw unary calls: the test encodes the
 * request bytes itself (so it can send malformed ones) and decodes the answer with the
 * generated code.
 */
import { Client, Metadata, credentials } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { health } from '../../proto';

/** The outcome of a call: the decoded response, or the status it failed with. */
export type CallResult<Response> =
  { readonly ok: true; readonly response: Response } | { readonly ok: false; readonly error: ServiceError };

export function createRawClient(address: string): Client {
  return new Client(address, credentials.createInsecure());
}

/** Sends `requestBytes` to `path` and decodes the answer; never rejects on a gRPC status. */
export function callUnary<Response>(
  client: Client,
  path: string,
  requestBytes: Uint8Array,
  decodeResponse: (bytes: Uint8Array) => Response,
  timeoutMs = 5_000,
  metadata: Readonly<Record<string, string>> = {},
): Promise<CallResult<Response>> {
  const sent = new Metadata();
  for (const [key, value] of Object.entries(metadata)) sent.set(key, value);
  return new Promise((resolve) => {
    client.makeUnaryRequest<Uint8Array, Response>(
      path,
      (bytes) => Buffer.from(bytes),
      (bytes) => decodeResponse(bytes),
      requestBytes,
      sent,
      { deadline: Date.now() + timeoutMs },
      (error, response) => {
        if (error !== null) resolve({ ok: false, error });
        else resolve({ ok: true, response: response as Response });
      },
    );
  });
}

/** Calls grpc.health.v1.Health/Check for `service` (the whole server by default). */
export function checkHealth(client: Client, service = ''): Promise<CallResult<health.HealthCheckResponse>> {
  return callUnary(
    client,
    '/grpc.health.v1.Health/Check',
    health.HealthCheckRequest.encode({ service }).finish(),
    (bytes) => health.HealthCheckResponse.decode(bytes),
  );
}
