/**
 * Imported for its effect, before kafkajs (kafka-sink.ts, bench/audit/kafka.ts): makes
 * kafkajs checksum record batches with crc32c.ts's faster CRC-32C, grow its encoders'
 * buffers without zero-filling them (see crc32c.ts), group a request's messages by
 * partition in one pass, frame requests in one buffer and write Produce requests with
 * produce-request.ts (see kafkajs-patches.ts). Order matters: the checksum module is replaced before the produce
 * request's modules (which load kafkajs's record batch encoder) are required.
 */
import { installKafkajsCrc32c, installKafkajsUnzeroedGrowth } from './crc32c';
import {
  installKafkajsLinearGrouping,
  installKafkajsProduceEncoder,
  installKafkajsRequestFraming,
} from './kafkajs-patches';

installKafkajsCrc32c();
installKafkajsUnzeroedGrowth();
installKafkajsLinearGrouping();
installKafkajsRequestFraming();
installKafkajsProduceEncoder();
