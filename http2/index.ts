/**
 * The HTTP/2 codec shared by the proxy's policy client and the policy server: HPACK
 * (RFC 7541) and the frame constants and writers of RFC 9113.
 */
export * from './hpack';
export * from './http2-frames';
