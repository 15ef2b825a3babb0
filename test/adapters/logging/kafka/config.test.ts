import { strict as assert } from 'node:assert';
import { parseWithSchema, type ConfigProblem } from '../../../../adapters';
import {
  KAFKA_SINK_SCHEMA,
  checkKafkaSinkParams,
  finishTopic,
  sanitizeTopicPart,
} from '../../../../adapters/logging/kafka/config';
import { parseRouteTemplate, type RouteTemplate } from '../../../../adapters/logging/kafka/route-template';
import { Duration, type AttributeValue } from '../../../../attributes';
import { validateConfigTexts } from '../../../../policy-server';

/** Every problem of a configuration: the schema's, then the relations'. */
function problems(params: Record<string, unknown>): ConfigProblem[] {
  const parsed = parseWithSchema(KAFKA_SINK_SCHEMA, {
    brokers: ['127.0.0.1:9092'],
    topic: 'audit',
    ...params,
  });
  return parsed.ok ? checkKafkaSinkParams(parsed.value) : parsed.problems;
}

function template(source: string): RouteTemplate {
  const parsed = parseRouteTemplate(source);
  if (typeof parsed === 'string') throw new Error(parsed);
  return parsed;
}

describe('adapters/logging/kafka: parameters', () => {
  it('accepts the least configuration and fills the defaults', () => {
    const parsed = parseWithSchema(KAFKA_SINK_SCHEMA, { brokers: ['kafka-0.kafka:9092'], topic: 'audit' });
    assert.ok(parsed.ok);
    assert.deepEqual(
      { ...parsed.value },
      {
        brokers: ['kafka-0.kafka:9092'],
        topic: 'audit',
        key: '',
        headers: {},
        clientId: 'switchboard',
        compression: 'NONE',
        maxRequestBytes: 1_000_000,
        connectionTimeout: 3000,
        requestTimeout: 10_000,
      },
    );
    assert.deepEqual(checkKafkaSinkParams(parsed.value), []);
  });

  const bad: [string, Record<string, unknown>, ConfigProblem[]][] = [
    ['no brokers', { brokers: [] }, [{ path: 'brokers', message: 'must have at least 1 entries, got 0' }]],
    [
      'a broker without a port',
      { brokers: ['127.0.0.1:9092', 'kafka'] },
      [
        {
          path: 'brokers[1]',
          message: 'must be host:port with a port from 1 to 65535, such as 127.0.0.1:9092, got "kafka"',
        },
      ],
    ],
    [
      'a broker port out of range',
      { brokers: ['kafka:70000'] },
      [
        {
          path: 'brokers[0]',
          message: 'must be host:port with a port from 1 to 65535, such as 127.0.0.1:9092, got "kafka:70000"',
        },
      ],
    ],
    [
      'a fixed topic with a character Kafka refuses',
      { topic: 'audit logs' },
      [{ path: 'topic', message: 'must be 1 to 249 of the characters a-z A-Z 0-9 . _ -, got "audit logs"' }],
    ],
    [
      'a topic placeholder never closed',
      { topic: 'audit-{sourceNamespace' },
      [{ path: 'topic', message: 'has a "{" at offset 6 that is never closed' }],
    ],
    [
      'a topic template with illegal literal text',
      { topic: 'audit/{sourceNamespace}' },
      [
        {
          path: 'topic',
          message:
            'has literal text outside the characters a-z A-Z 0-9 . _ - that Kafka allows in topic names: "audit/{sourceNamespace}"',
        },
      ],
    ],
    [
      'a key placeholder without a name',
      { key: '{}' },
      [
        {
          path: 'key',
          message:
            'has a placeholder {} at offset 0 whose variable name "" is not a name (letters, digits, _ . -)',
        },
      ],
    ],
    [
      'a stray closing brace in a header',
      { headers: { 'x-app': 'app}' } },
      [
        {
          path: 'headers.x-app',
          message:
            'has a "}" at offset 3 that closes no "{"; placeholders are {variable} or {variable|default}',
        },
      ],
    ],
    [
      'a reserved header',
      { headers: { 'Switchboard-Event-Id': 'x' } },
      [
        {
          path: 'headers.Switchboard-Event-Id',
          message:
            'is set on every record by the adapter; choose another name (reserved: switchboard-event-id)',
        },
      ],
    ],
    [
      'an unknown compression codec',
      { compression: 'SNAPPY' },
      [{ path: 'compression', message: 'must be one of NONE, GZIP, got "SNAPPY"' }],
    ],
    [
      'a client certificate without its key',
      { tls: { certFile: 'client.pem' } },
      [
        {
          path: 'tls.keyFile',
          message:
            'tls.certFile and tls.keyFile go together (a client certificate and its key): give both or neither',
        },
      ],
    ],
    [
      'SASL without a password',
      { tls: {}, sasl: { mechanism: 'SCRAM-SHA-512', username: 'audit' } },
      [{ path: 'sasl.password', message: 'is required: give sasl.password or sasl.passwordFile' }],
    ],
    [
      'SASL PLAIN without TLS',
      { sasl: { mechanism: 'PLAIN', username: 'audit', password: 'secret' } },
      [
        {
          path: 'sasl.mechanism',
          message:
            'PLAIN sends the password in clear text: use it only with tls (add tls: {}), or use SCRAM-SHA-512',
        },
      ],
    ],
    [
      'an unknown SASL mechanism',
      { sasl: { mechanism: 'GSSAPI', username: 'audit', password: 'x' } },
      [
        {
          path: 'sasl.mechanism',
          message: 'must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, got "GSSAPI"',
        },
      ],
    ],
    [
      'createTopics with no partitions',
      { createTopics: { partitions: 0 } },
      [{ path: 'createTopics.partitions', message: 'must be >= 1, got 0' }],
    ],
    [
      'a misspelt field',
      { partitionKey: '{app}' },
      [
        {
          path: 'partitionKey',
          message:
            'is not a known field; known fields: brokers, topic, key, headers, clientId, compression, maxRequestBytes, connectionTimeout, requestTimeout, tls, sasl, createTopics',
        },
      ],
    ],
  ];
  for (const [name, params, expected] of bad) {
    it(`refuses ${name}`, () => assert.deepEqual(problems(params), expected));
  }
});

describe('adapters/logging/kafka: route templates', () => {
  const vars = new Map<string, AttributeValue>([
    ['sourceNamespace', 'bookinfo'],
    ['destinationApp', 'reviews'],
    ['responseCode', 503n],
    ['latency', Duration.fromNanos(1_500_000n)],
  ]);

  it('fills placeholders from variables, exactly or ignoring case, with defaults', () => {
    assert.equal(template('audit-{sourceNamespace}').expand(vars), 'audit-bookinfo');
    assert.equal(template('{DESTINATIONAPP}/{responseCode}').expand(vars), 'reviews/503');
    assert.equal(template('{latency}').expand(vars), '1.5ms');
    assert.equal(template('audit-{team|shared}').expand(vars), 'audit-shared');
    assert.equal(template('{team}').expand(vars), '');
    assert.equal(template('fixed').fixed, true);
  });

  it('makes topic names legal whatever the variables hold', () => {
    assert.equal(template('audit-{ns}').expand(new Map([['ns', 'a b/c']]), sanitizeTopicPart), 'audit-a_b_c');
    assert.equal(finishTopic(''), '_');
    assert.equal(finishTopic('..'), '_..');
    assert.equal(finishTopic('x'.repeat(300)).length, 249);
  });
});

describe('adapters/logging/kafka: configuration errors in a handler resource', () => {
  it('names the file, the line and the field of every problem', () => {
    const errors = validateConfigTexts({
      'audit.yaml': `apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: audit, namespace: istio-system }
spec:
  compiledAdapter: kafka
  params:
    brokers: ['kafka']
    topic: 'audit-{ns'
    spool: { maxSpoolBytes: 10 }
`,
    });
    assert.deepEqual(
      errors.map((e) => ({ ...e })),
      [
        {
          file: 'audit.yaml',
          line: 7,
          path: 'spec.params.brokers[0]',
          message:
            'kafka: must be host:port with a port from 1 to 65535, such as 127.0.0.1:9092, got "kafka"',
        },
        {
          file: 'audit.yaml',
          line: 8,
          path: 'spec.params.topic',
          message: 'kafka: has a "{" at offset 6 that is never closed',
        },
        {
          file: 'audit.yaml',
          line: 9,
          path: 'spec.params.spool.maxSpoolBytes',
          message: 'kafka: must be at least 4 × spool.maxSegmentBytes (67108864), got 10',
        },
      ],
    );
  });
});
