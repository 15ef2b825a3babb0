/**
 * The elasticsearch adapter's own parameters (the export parameters every export adapter
 * shares — spool, redaction, hashKey, delivery — are added in index.ts). README.md has a
 * complete example.
 */
import type { ConfigProblem, SchemaType } from '../../schema';
import { s } from '../../schema';
import { DEFAULT_DEAD_LETTER_ROTATE_BYTES } from './dead-letter-file';
import { IndexPattern } from './index-pattern';

export const DEFAULT_INDEX = 'audit-{yyyy.MM.dd}';

const TLS_PARAMS = s.object({
  /** A PEM file of the certificate authorities to trust (relative paths: the configuration file's folder). */
  caFile: s.string().optionalField(),
  /**
   * DANGEROUS: accepts any server certificate, so anyone on the path can read and alter the
   * audit records. For a first try against a self-signed node only; give caFile instead.
   */
  insecureSkipVerify: s.boolean().default(false),
});

const TEMPLATE_PARAMS = s.object({
  /** Default `switchboard-<index prefix>`, such as `switchboard-audit` for `audit-{yyyy.MM.dd}`. */
  name: s.string().optionalField(),
  /** Among composable templates matching the same index, the highest priority wins. */
  priority: s.integer({ min: 0 }).default(200),
  /** Primary shards of each index. */
  shards: s.integer({ min: 1, max: 1024 }).default(1),
  /** Replicas of each shard (0 on a single node, or the indices stay yellow). */
  replicas: s.integer({ min: 0, max: 64 }).default(1),
  /** The indices' refresh interval, such as `1s` or `30s`; default the server's (1s). */
  refreshInterval: s.string().optionalField(),
});

const ITEM_RETRY_PARAMS = s.object({
  /**
   * How many times, within one delivery, the items Elasticsearch answered 429 or 5xx are
   * sent again (only those) before the delivery fails and the whole batch is offered again
   * after the delivery back-off (delivery.minRetryDelay…maxRetryDelay). Records are never
   * given up on.
   */
  maxAttempts: s.integer({ min: 1, max: 100 }).default(5),
  /** The wait before the first resend of rejected items; doubles each time. */
  minDelay: s.duration({ positive: true }).default(100),
  /** The longest wait between resends of rejected items. */
  maxDelay: s.duration({ positive: true }).default(5000),
});

/** The parameters of the Elasticsearch sink, to spread into the adapter's schema. */
export const ELASTICSEARCH_SINK_PARAMS = {
  /** The nodes to send to, `http(s)://host:port`; requests go round-robin, and a dead node is skipped. */
  urls: s.list(s.string(), { minLength: 1 }),
  /** The index each record goes to; see index-pattern.ts and the README. */
  index: s.string().default(DEFAULT_INDEX),
  /** An API key, as Elasticsearch returns it encoded (`base64(id:api_key)`). */
  apiKey: s.string().optionalField(),
  /** Basic authentication: the user; give password too. */
  username: s.string().optionalField(),
  password: s.string().optionalField(),
  tls: TLS_PARAMS.default(TLS_PARAMS.parse({}, 'tls', [])),
  /** The longest a bulk request may take before it counts as failed (and is sent again). */
  requestTimeout: s.duration({ positive: true }).default(30_000),
  /** gzip the bulk requests: less network, more CPU. */
  compression: s.boolean().default(false),
  template: TEMPLATE_PARAMS.default(TEMPLATE_PARAMS.parse({}, 'template', [])),
  itemRetry: ITEM_RETRY_PARAMS.default(ITEM_RETRY_PARAMS.parse({}, 'itemRetry', [])),
  /**
   * JSON lines of records Elasticsearch refused for good (a 4xx item: a mapping conflict):
   * one line per record with the time, index, id, status, reason and the record itself.
   * Default `<handler data dir>/dead-letter.jsonl`; relative paths: the handler's data dir.
   */
  deadLetterFile: s.string().optionalField(),
  /**
   * Beyond this many bytes the dead-letter file is renamed `<name>.<UTC time>.jsonl` and a
   * new one begun; rotated files are never deleted by the handler.
   */
  deadLetterRotateBytes: s.integer({ min: 1024 }).default(DEFAULT_DEAD_LETTER_ROTATE_BYTES),
};

/** The sink's parameters alone (the adapter's schema adds the export parameters). */
export const ELASTICSEARCH_SINK_SCHEMA = s.object(ELASTICSEARCH_SINK_PARAMS);
/** The sink's parameters, parsed. */
export type ElasticsearchSinkParams = SchemaType<typeof ELASTICSEARCH_SINK_SCHEMA>;

/** Problems among the sink's parameters (relations between fields), without I/O. */
export function checkElasticsearchParams(params: ElasticsearchSinkParams): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  params.urls.forEach((url, i) => {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
      problems.push({
        path: `urls[${i}]`,
        message: `must be an http:// or https:// URL such as http://127.0.0.1:9200, got ${JSON.stringify(url)}`,
      });
    } else if (parsed.username !== '' || parsed.password !== '') {
      problems.push({
        path: `urls[${i}]`,
        message: 'must not carry credentials: give username and password (or apiKey) as parameters',
      });
    }
  });
  const pattern = IndexPattern.compile(params.index, 'index');
  if (Array.isArray(pattern)) problems.push(...pattern);
  if (params.apiKey !== undefined && params.username !== undefined) {
    problems.push({
      path: 'apiKey',
      message: 'and username are both given: authenticate one way, remove one',
    });
  }
  if (params.username !== undefined && params.password === undefined) {
    problems.push({ path: 'password', message: 'is required with username' });
  }
  if (params.password !== undefined && params.username === undefined) {
    problems.push({ path: 'username', message: 'is required with password' });
  }
  const insecure = params.tls.insecureSkipVerify || params.tls.caFile !== undefined;
  if (insecure && !params.urls.some((url) => url.startsWith('https:'))) {
    problems.push({ path: 'tls', message: 'applies only to https:// urls, and none is https://' });
  }
  if (params.tls.insecureSkipVerify && params.tls.caFile !== undefined) {
    problems.push({
      path: 'tls.insecureSkipVerify',
      message: 'with caFile makes caFile pointless: remove insecureSkipVerify (it accepts any certificate)',
    });
  }
  if (params.template.name !== undefined && !/^[a-z0-9][a-z0-9_.-]*$/.test(params.template.name)) {
    problems.push({
      path: 'template.name',
      message: `must be lower case letters, digits, _ . and - (not first), got ${JSON.stringify(params.template.name)}`,
    });
  }
  if (params.itemRetry.maxDelay < params.itemRetry.minDelay) {
    problems.push({
      path: 'itemRetry.maxDelay',
      message: `must be at least itemRetry.minDelay (${params.itemRetry.minDelay} ms)`,
    });
  }
  if (
    params.deadLetterFile !== undefined &&
    (params.deadLetterFile === '' || params.deadLetterFile.endsWith('/'))
  ) {
    problems.push({
      path: 'deadLetterFile',
      message: 'must name a file, such as /var/lib/switchboard/audit-dead-letter.jsonl',
    });
  }
  return problems;
}

/** The template's name when none is given: `switchboard-` and the pattern's leading text, trimmed. */
export function defaultTemplateName(index: string): string {
  const prefix = index
    .split('{')[0]!
    .replace(/[^a-z0-9_.-]/g, '')
    .replace(/[-_.]+$/, '');
  return `switchboard-${prefix === '' ? 'audit' : prefix}`;
}
