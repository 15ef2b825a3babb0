/**
 * Imported for its effect, before kafkajs (kafka-sink.ts, bench/audit/kafka.ts): makes
 * kafkajs checksum record batches with crc32c.ts's faster CRC-32C, and grow its encoders'
 * buffers without zero-filling them (see crc32c.ts).
 */
import { installKafkajsCrc32c, installKafkajsUnzeroedGrowth } from './crc32c';

installKafkajsCrc32c();
installKafkajsUnzeroedGrowth();
