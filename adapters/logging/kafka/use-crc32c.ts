/**
 * Imported for its effect, before kafkajs (kafka-sink.ts, bench/audit/kafka.ts): makes
 * kafkajs checksum record batches with crc32c.ts's faster CRC-32C.
 */
import { installKafkajsCrc32c } from './crc32c';

installKafkajsCrc32c();
