/** The noop adapter takes no parameters (Mixer's: google.protobuf.Empty). */
import { s, type SchemaType } from '../schema';

export const NOOP_CONFIG = s.object({});

export type NoopConfig = SchemaType<typeof NOOP_CONFIG>;
