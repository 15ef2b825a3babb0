/**
 * The HTTP/2 codec shared by the proxy's policy client, the proxy's h2c listener and the
 * policy server: HPACK (RFC 7541), the frame constants and writers of RFC 9113, the connection
 * base class both sides extend, the server connection, and the choice between it and
 * `node:http2` (`SWITCHBOARD_HTTP2_SERVER`), with the server connection's idle timeout for a
 * `node:http2` session.
 *
 * The values are re-exported as plain properties, not through `export *`: TypeScript's
 * CommonJS output reads star re-exports through a getter on every use, and these are read
 * per frame (FRAME_HEADER_BYTES, writeFrameHeader…). `export *` still brings the types and
 * const enums.
 */
import * as connection from './http2-connection';
import * as frames from './http2-frames';
import * as hpack from './hpack';
import * as server from './http2-server-connection';
import * as serverChoice from './http2-server-choice';
import * as idleSession from './idle-session-timeout';

export * from './hpack';
export * from './http2-connection';
export * from './http2-frames';
export * from './http2-server-connection';
export * from './http2-server-choice';
export * from './idle-session-timeout';

export const HUFFMAN_CODES = hpack.HUFFMAN_CODES;
export const DEFAULT_HEADER_TABLE_SIZE = hpack.DEFAULT_HEADER_TABLE_SIZE;
export const HpackDecoder = hpack.HpackDecoder;
export type HpackDecoder = hpack.HpackDecoder;
export const HpackEncoder = hpack.HpackEncoder;
export type HpackEncoder = hpack.HpackEncoder;
export const CLIENT_PREFACE = frames.CLIENT_PREFACE;
export const FRAME_HEADER_BYTES = frames.FRAME_HEADER_BYTES;
export const errorCodeName = frames.errorCodeName;
export const DEFAULT_MAX_FRAME_SIZE = frames.DEFAULT_MAX_FRAME_SIZE;
export const MAX_MAX_FRAME_SIZE = frames.MAX_MAX_FRAME_SIZE;
export const DEFAULT_INITIAL_WINDOW_SIZE = frames.DEFAULT_INITIAL_WINDOW_SIZE;
export const MAX_WINDOW_SIZE = frames.MAX_WINDOW_SIZE;
export const writeFrameHeader = frames.writeFrameHeader;
export const settingsFrame = frames.settingsFrame;
export const SETTINGS_ACK = frames.SETTINGS_ACK;
export const windowUpdateFrame = frames.windowUpdateFrame;
export const rstStreamFrame = frames.rstStreamFrame;
export const goAwayFrame = frames.goAwayFrame;
export const pingAckFrame = frames.pingAckFrame;
export const pingFrame = frames.pingFrame;
export const STREAM_WINDOW_BYTES = connection.STREAM_WINDOW_BYTES;
export const CONNECTION_WINDOW_BYTES = connection.CONNECTION_WINDOW_BYTES;
export const Http2Connection = connection.Http2Connection;
export type Http2Connection<S extends connection.Http2WindowedStream> = connection.Http2Connection<S>;
export const Http2ServerConnection = server.Http2ServerConnection;
export type Http2ServerConnection = server.Http2ServerConnection;
export const Http2ServerStream = server.Http2ServerStream;
export type Http2ServerStream = server.Http2ServerStream;
export const requestHeadersOf = server.requestHeadersOf;
export const STREAM_HIGH_WATER_BYTES = server.STREAM_HIGH_WATER_BYTES;
export const SOCKET_HIGH_WATER_BYTES = server.SOCKET_HIGH_WATER_BYTES;
export const DEFAULT_MAX_HEADER_LIST_BYTES = server.DEFAULT_MAX_HEADER_LIST_BYTES;
export const http2ServerFromEnvironment = serverChoice.http2ServerFromEnvironment;
export const closeSessionWhenIdle = idleSession.closeSessionWhenIdle;
