/**
 * The composable index template the adapter installs on start, so that every index its
 * pattern names gets the audit schema's mappings (README.md shows it whole).
 *
 * Choices, and why:
 * - ECS field names and ECS types where ECS has the field (keyword, ip, long, date), except
 *   `@timestamp`, which is `date_nanos`: audit records keep their nanoseconds, so records
 *   of the same millisecond still sort in order (range 1970 to 2262).
 * - `ignore_malformed` on the ip and numeric fields: a proxy that sends `unknown` as a
 *   source address still gets its record indexed (the bad field is listed in `_ignored`,
 *   its value stays in `switchboard.variables` and `_source`) instead of losing it to the
 *   dead-letter file.
 * - `switchboard.variables` is `flattened`: every variable, whatever its name, is one
 *   field of the mapping, so instances with many or changing variable names (header maps)
 *   cannot explode the mapping; each leaf is searchable as a keyword
 *   (`switchboard.variables.requestHeaders.x-tenant: "a"`). Values longer than
 *   8191 characters are kept in `_source` but not indexed.
 * - Other string fields are `keyword` (exact, aggregatable), with `ignore_above` (1024, or
 *   8191 for URLs and user agents) so that a huge value is kept in `_source` rather than
 *   refusing the record; this distribution has no analysis plugins, and audits search exact
 *   values.
 * - Root `dynamic: true`: a field added in a later minor version of the schema is mapped
 *   from its first value until the template of that version is installed.
 * No ingest pipeline, data stream or ILM policy: the integ-test distribution (and many
 * managed clusters) lack them; dated indices and this template are all it needs.
 */
import { AUDIT_SCHEMA_VERSION } from '../audit';

type Mapping = Readonly<Record<string, unknown>>;

/** Longer values stay in `_source` but are not indexed (Lucene refuses terms over 32 KiB, which would refuse the record). */
const keyword = (ignoreAbove = 1024): Mapping => ({ type: 'keyword', ignore_above: ignoreAbove });
const long: Mapping = { type: 'long', ignore_malformed: true };
const ip: Mapping = { type: 'ip', ignore_malformed: true };
const object = (properties: Record<string, Mapping>): Mapping => ({ properties });

const PEER = object({
  principal: keyword(),
  name: keyword(),
  workload: keyword(),
  namespace: keyword(),
  app: keyword(),
});

/** The mappings of the audit record, schema 1.1 (adapters/logging/audit/README.md): logentry, metric and tracespan records. */
export const AUDIT_MAPPINGS: Mapping = {
  dynamic: true,
  properties: {
    '@timestamp': { type: 'date_nanos' },
    ecs: object({ version: keyword() }),
    event: object({
      id: keyword(),
      kind: keyword(),
      dataset: keyword(),
      duration: long,
      start: { type: 'date_nanos' },
      end: { type: 'date_nanos' },
    }),
    log: object({ level: keyword() }),
    source: object({ ip, port: long, user: object({ name: keyword() }) }),
    destination: object({ ip, port: long, address: keyword() }),
    http: object({
      request: object({
        method: keyword(),
        bytes: long,
        id: keyword(),
        referrer: keyword(8191),
      }),
      response: object({ status_code: long, bytes: long }),
    }),
    url: object({ original: keyword(8191), path: keyword(8191), domain: keyword() }),
    network: object({ protocol: keyword() }),
    user_agent: object({ original: keyword(8191) }),
    trace: object({ id: keyword() }),
    span: object({ id: keyword() }),
    switchboard: object({
      schema_version: keyword(),
      record_type: keyword(),
      instance: keyword(),
      handler: keyword(),
      monitored_resource_type: keyword(),
      decision: keyword(),
      rule: keyword(),
      source: PEER,
      destination: PEER,
      // A metric's value: a number, or text when it was not one (kept in _source, not indexed).
      metric: object({ value: { type: 'double', ignore_malformed: true } }),
      span: object({
        name: keyword(),
        client: { type: 'boolean' },
        parent_id: keyword(),
        source_name: keyword(),
        destination_name: keyword(),
        api_protocol: keyword(),
        request_total_bytes: long,
        response_total_bytes: long,
      }),
      variables: { type: 'flattened', ignore_above: 8191, depth_limit: 20 },
    }),
  },
};

/** What the template carries besides the mappings. */
export interface IndexTemplateSettings {
  readonly indexPattern: string;
  readonly priority: number;
  readonly shards: number;
  readonly replicas: number;
  /** Elasticsearch's refresh interval (`1s`), or undefined for the server's default. */
  readonly refreshInterval?: string | undefined;
}

/** `1.0.0` → 10000: the template's `version`, so a look at the cluster says which schema it maps. */
export function templateVersion(schemaVersion = AUDIT_SCHEMA_VERSION): number {
  const [major = 0, minor = 0, patch = 0] = schemaVersion.split('.').map(Number);
  return major * 10_000 + minor * 100 + patch;
}

/** The body of `PUT _index_template/<name>`. */
export function indexTemplateBody(settings: IndexTemplateSettings): Record<string, unknown> {
  return {
    index_patterns: [settings.indexPattern],
    priority: settings.priority,
    version: templateVersion(),
    _meta: {
      description: 'Switchboard audit records (adapters/logging/elasticsearch)',
      managed_by: 'switchboard',
      schema_version: AUDIT_SCHEMA_VERSION,
    },
    template: {
      settings: {
        number_of_shards: settings.shards,
        number_of_replicas: settings.replicas,
        ...(settings.refreshInterval === undefined ? {} : { refresh_interval: settings.refreshInterval }),
      },
      mappings: AUDIT_MAPPINGS,
    },
  };
}
