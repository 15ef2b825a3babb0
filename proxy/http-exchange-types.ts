/** The downstream side of an exchange: Node's HTTP/1.1 or HTTP/2 (compatibility API) objects. */
import type * as http from 'node:http';
import type * as http2 from 'node:http2';

export type DownstreamRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type DownstreamResponse = http.ServerResponse | http2.Http2ServerResponse;
