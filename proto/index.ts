// Public surface of proto/: the generated message types and codecs of the wire API.
// Regenerate with `npm run gen:proto`.
export * as mixer from './generated/mixer/v1/mixer.pb';
export * as attributesPb from './generated/mixer/v1/attributes.pb';
export * as health from './generated/grpc/health/v1/health.pb';
export { Status } from './generated/google/rpc/status.pb';
export { Duration } from './generated/google/protobuf/duration.pb';
export { Timestamp } from './generated/google/protobuf/timestamp.pb';
