/**
 * The kafka sink's parameters: where records go (brokers, topic, key, headers), how they are
 * produced (compression, request size, timeouts), security (TLS, SASL) and whether missing
 * topics are created. The export adapter adds the common parameters (spool, redaction,
 * delivery batching) to these. `acks: all` and the idempotent producer are not options:
 * they are always on, because the delivery guarantee depends on them.
 */
import type { ConfigProblem } from '../../schema';
import { s, type SchemaType } from '../../schema';
import { parseRouteTemplate, type RouteTemplate } from './route-template';

/** Codecs kafkajs has without extra packages (snappy, lz4 and zstd need codec plugins). */
export const KAFKA_COMPRESSIONS = ['NONE', 'GZIP'] as const;
export type KafkaCompression = (typeof KAFKA_COMPRESSIONS)[number];

export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/** Kafka's own default of `message.max.bytes` is 1 MiB + 12; a produce request stays under it. */
export const DEFAULT_MAX_REQUEST_BYTES = 1_000_000;

const TLS_PARAMS = s.object({
  /** PEM file of the certificate authorities to trust; default the system's. Relative paths are resolved against the configuration file's folder. */
  caFile: s.string().optionalField(),
  /** PEM client certificate, for mutual TLS (with keyFile). */
  certFile: s.string().optionalField(),
  /** PEM private key of certFile. */
  keyFile: s.string().optionalField(),
  /** The name to check the brokers' certificates against, when it is not the host in `brokers`. */
  serverName: s.string().optionalField(),
  /** Accept any certificate. For tests only: it gives up the protection TLS is for. */
  insecureSkipVerify: s.boolean().default(false),
});

const SASL_PARAMS = s.object({
  mechanism: s.enumeration(SASL_MECHANISMS),
  username: s.string(),
  /** The password, or: */
  password: s.string().optionalField(),
  /** a file holding it (trailing newline ignored), so the configuration need not. */
  passwordFile: s.string().optionalField(),
});

const CREATE_TOPICS_PARAMS = s.object({
  partitions: s.integer({ min: 1, max: 100_000 }).default(1),
  /** Brokers holding each partition; at most the number of brokers. */
  replicationFactor: s.integer({ min: 1, max: 32_767 }).default(1),
});

export const KAFKA_SINK_PARAMS = {
  /** Bootstrap brokers, `host:port`; at least one. */
  brokers: s.list(s.string(), { minLength: 1 }),
  /** The topic: fixed (`audit`), or a template over the instance's variables (`audit-{sourceNamespace|unknown}`). */
  topic: s.string(),
  /** The record key (partitioning: records with one key stay in order on one partition); a template; empty: no key. */
  key: s.string().default(''),
  /** Extra record headers, name → template. Every record also carries switchboard-event-id (its event.id). */
  headers: s.record(s.string()).default({}),
  /** The client id the brokers see (quotas, logs). */
  clientId: s.string().default('switchboard'),
  /** Compression of each produce request: NONE (default) or GZIP. */
  compression: s.enumeration(KAFKA_COMPRESSIONS).default('NONE'),
  /** The most bytes of records in one produce request; a delivery larger than this is sent as several, in order. */
  maxRequestBytes: s.integer({ min: 1024 }).default(DEFAULT_MAX_REQUEST_BYTES),
  /** How long connecting to a broker may take before the attempt fails (and the batch is retried later). */
  connectionTimeout: s.duration({ positive: true }).default(3000),
  /** How long the brokers may take to acknowledge a produce request (with acks all). */
  requestTimeout: s.duration({ positive: true }).default(10_000),
  /** TLS to the brokers; absent: plaintext. */
  tls: TLS_PARAMS.optionalField(),
  /** SASL authentication; absent: none. */
  sasl: SASL_PARAMS.optionalField(),
  /** When given, a topic that does not exist is created with these settings; absent: records wait until someone creates it. */
  createTopics: CREATE_TOPICS_PARAMS.optionalField(),
};

export const KAFKA_SINK_SCHEMA = s.object(KAFKA_SINK_PARAMS);
export type KafkaSinkParams = SchemaType<typeof KAFKA_SINK_SCHEMA>;

/** Topic names Kafka accepts: 1–249 of these characters, not `.` or `..`. */
const TOPIC_CHARACTERS = /^[A-Za-z0-9._-]+$/;
const MAX_TOPIC_LENGTH = 249;

/** A value put into a topic name: characters Kafka refuses become `_`. */
export function sanitizeTopicPart(value: string): string {
  return TOPIC_CHARACTERS.test(value) ? value : value.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** A filled-in topic name cut to Kafka's limit, never empty, `.` or `..`. */
export function finishTopic(name: string): string {
  const cut = name.length > MAX_TOPIC_LENGTH ? name.slice(0, MAX_TOPIC_LENGTH) : name;
  return cut === '' || cut === '.' || cut === '..' ? `_${cut}` : cut;
}

/** The parsed templates of the sink's parameters. */
export interface KafkaRouteTemplates {
  readonly topic: RouteTemplate;
  readonly key: RouteTemplate;
  readonly headers: readonly { readonly name: string; readonly value: RouteTemplate }[];
}

/** Parses the templates; call only on parameters without problems. */
export function parseKafkaTemplates(params: KafkaSinkParams): KafkaRouteTemplates {
  const parse = (source: string): RouteTemplate => {
    const parsed = parseRouteTemplate(source);
    if (typeof parsed === 'string') throw new Error(`${JSON.stringify(source)} ${parsed}`);
    return parsed;
  };
  return {
    topic: parse(params.topic),
    key: parse(params.key),
    headers: Object.entries(params.headers).map(([name, value]) => ({ name, value: parse(value) })),
  };
}

/**
 * Headers every record carries; `headers` may not set them. Only the record's id, for
 * deduplication without parsing the value: each header costs the producer several
 * microseconds per record (the schema version is in the record itself).
 */
export const RESERVED_HEADERS = ['switchboard-event-id'];

/** Every problem with the sink's parameters beyond the schema, with its path; no I/O. */
export function checkKafkaSinkParams(params: KafkaSinkParams): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  params.brokers.forEach((broker, i) => {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(broker);
    const port = m === null ? NaN : Number(m[2]);
    if (m === null || port < 1 || port > 65535) {
      problems.push({
        path: `brokers[${i}]`,
        message: `must be host:port with a port from 1 to 65535, such as 127.0.0.1:9092, got ${JSON.stringify(broker)}`,
      });
    }
  });
  const topic = parseRouteTemplate(params.topic);
  if (typeof topic === 'string') {
    problems.push({ path: 'topic', message: topic });
  } else if (topic.fixed) {
    if (!TOPIC_CHARACTERS.test(params.topic) || params.topic.length > MAX_TOPIC_LENGTH) {
      problems.push({
        path: 'topic',
        message: `must be 1 to ${MAX_TOPIC_LENGTH} of the characters a-z A-Z 0-9 . _ -, got ${JSON.stringify(params.topic)}`,
      });
    } else if (params.topic === '.' || params.topic === '..') {
      problems.push({ path: 'topic', message: `cannot be ${JSON.stringify(params.topic)}` });
    }
  } else {
    // The literal text must be legal on its own; filled-in values are made legal (see sanitizeTopicPart).
    const literal = params.topic.replace(/\{[^}]*\}/g, '');
    if (literal !== '' && !TOPIC_CHARACTERS.test(literal)) {
      problems.push({
        path: 'topic',
        message: `has literal text outside the characters a-z A-Z 0-9 . _ - that Kafka allows in topic names: ${JSON.stringify(params.topic)}`,
      });
    }
  }
  const key = parseRouteTemplate(params.key);
  if (typeof key === 'string') problems.push({ path: 'key', message: key });
  for (const [name, value] of Object.entries(params.headers)) {
    if (name === '') problems.push({ path: 'headers', message: 'has a header with an empty name' });
    if (RESERVED_HEADERS.includes(name.toLowerCase())) {
      problems.push({
        path: `headers.${name}`,
        message: `is set on every record by the adapter; choose another name (reserved: ${RESERVED_HEADERS.join(', ')})`,
      });
    }
    const parsed = parseRouteTemplate(value);
    if (typeof parsed === 'string') problems.push({ path: `headers.${name}`, message: parsed });
  }
  if (params.maxRequestBytes > 100 * 1024 * 1024) {
    problems.push({
      path: 'maxRequestBytes',
      message: `must be at most 104857600 (100 MiB, Kafka's socket.request.max.bytes), got ${params.maxRequestBytes}`,
    });
  }
  const tls = params.tls;
  if (tls !== undefined && (tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    problems.push({
      path: tls.certFile === undefined ? 'tls.certFile' : 'tls.keyFile',
      message:
        'tls.certFile and tls.keyFile go together (a client certificate and its key): give both or neither',
    });
  }
  const sasl = params.sasl;
  if (sasl !== undefined && (sasl.password === undefined) === (sasl.passwordFile === undefined)) {
    problems.push({
      path: 'sasl.password',
      message:
        sasl.password === undefined
          ? 'is required: give sasl.password or sasl.passwordFile'
          : 'and sasl.passwordFile are both given: keep one',
    });
  }
  if (sasl !== undefined && sasl.mechanism === 'PLAIN' && tls === undefined) {
    problems.push({
      path: 'sasl.mechanism',
      message:
        'PLAIN sends the password in clear text: use it only with tls (add tls: {}), or use SCRAM-SHA-512',
    });
  }
  return problems;
}
