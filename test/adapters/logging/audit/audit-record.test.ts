import { strict as assert } from 'node:assert';
import { createHmac } from 'node:crypto';
import { Duration, FlatStringMap, IpAddress, Timestamp, type AttributeValue } from '../../../../attributes';
import {
  AUDIT_SCHEMA_VERSION,
  DEFAULT_REDACTION_RULES,
  Redactor,
  buildAuditRecord,
  checkRedactionRules,
  toJsonValue,
} from '../../../../adapters/logging/audit';
import type { LogEntryInstance } from '../../../../templates';

function instance(
  variables: Record<string, AttributeValue>,
  extra: Partial<LogEntryInstance> = {},
): LogEntryInstance {
  return {
    name: 'accesslog.instance.istio-system',
    variables: new Map(Object.entries(variables)),
    timestamp: new Timestamp(1714558830, 123456789),
    severity: 'Warning',
    monitoredResourceType: '',
    monitoredResourceDimensions: new Map(),
    ...extra,
  };
}

const CONTEXT = {
  id: 'e1f0c9a2-0000-4000-8000-000000000001',
  handlerName: 'audit.handler.istio-system',
  nowMs: 0,
};

describe('adapters/logging/audit: the audit record', () => {
  it('puts well-known variables in their ECS fields and keeps every variable', () => {
    const record = buildAuditRecord(
      instance({
        sourceIp: IpAddress.parse('10.1.2.3')!,
        sourcePrincipal: 'spiffe://cluster.local/ns/default/sa/productpage',
        destinationServiceHost: 'reviews.default.svc.cluster.local',
        method: 'GET',
        path: '/reviews/1',
        responseCode: 200n,
        requestSize: 12n,
        responseSize: 3456n,
        latency: Duration.fromNanos(1_500_000n),
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        decision: 'ALLOW',
        rule: 'allow-reviews.rule.default',
        custom: true,
      }),
      CONTEXT,
      new Redactor([], undefined),
    );
    assert.deepEqual(record, {
      '@timestamp': '2024-05-01T10:20:30.123456789Z',
      ecs: { version: '8.11.0' },
      event: {
        id: CONTEXT.id,
        kind: 'event',
        dataset: 'switchboard.accesslog.instance.istio-system',
        duration: 1_500_000,
      },
      log: { level: 'warning' },
      source: { ip: '10.1.2.3' },
      destination: { address: 'reviews.default.svc.cluster.local' },
      http: { request: { method: 'GET', bytes: 12 }, response: { status_code: 200, bytes: 3456 } },
      url: { path: '/reviews/1' },
      trace: { id: '4bf92f3577b34da6a3ce929d0e0e4736' },
      switchboard: {
        source: { principal: 'spiffe://cluster.local/ns/default/sa/productpage' },
        decision: 'ALLOW',
        rule: 'allow-reviews.rule.default',
        schema_version: AUDIT_SCHEMA_VERSION,
        record_type: 'logentry',
        instance: 'accesslog.instance.istio-system',
        handler: 'audit.handler.istio-system',
        variables: {
          custom: true,
          decision: 'ALLOW',
          destinationServiceHost: 'reviews.default.svc.cluster.local',
          latency: '1.5ms',
          method: 'GET',
          path: '/reviews/1',
          requestSize: 12,
          responseCode: 200,
          responseSize: 3456,
          rule: 'allow-reviews.rule.default',
          sourceIp: '10.1.2.3',
          sourcePrincipal: 'spiffe://cluster.local/ns/default/sa/productpage',
          traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        },
      },
    });
  });

  it("uses the handler's clock when the instance has no timestamp, and info for no severity", () => {
    const record = buildAuditRecord(
      instance({}, { timestamp: undefined, severity: '' }),
      { ...CONTEXT, nowMs: Date.UTC(2024, 0, 2, 3, 4, 5, 678) },
      new Redactor([], undefined),
    );
    assert.equal(record['@timestamp'], '2024-01-02T03:04:05.678000000Z');
    assert.deepEqual(record['log'], { level: 'info' });
  });

  it('writes values JSON can carry exactly, and the rest as text', () => {
    assert.equal(toJsonValue(2n ** 60n), '1152921504606846976');
    assert.equal(toJsonValue(-5n), -5);
    assert.equal(toJsonValue(Number.POSITIVE_INFINITY), 'Infinity');
    assert.equal(toJsonValue(Uint8Array.from([1, 2, 3])), 'AQID');
    assert.deepEqual(toJsonValue(new FlatStringMap(['b', '2', 'a', '1'])), { a: '1', b: '2' });
  });
});

describe('adapters/logging/audit: redaction', () => {
  const KEY = 'a-secret-of-some-length';
  const hmac = (text: string): string =>
    `hmac-sha256:${createHmac('sha256', KEY).update(text).digest('hex')}`;

  it('masks credentials and cookies by default, in variables and in map variables', () => {
    const redacted = new Redactor(DEFAULT_REDACTION_RULES, undefined).redact(
      new Map<string, AttributeValue>([
        ['Authorization', 'Bearer abc'],
        [
          'requestHeaders',
          new FlatStringMap(['cookie', 'session=1', 'accept', '*/*', 'Proxy-Authorization', 'Basic x']),
        ],
      ]),
    );
    assert.deepEqual(Object.fromEntries(redacted), {
      Authorization: '[REDACTED]',
      requestHeaders: { 'Proxy-Authorization': '[REDACTED]', accept: '*/*', cookie: '[REDACTED]' },
    });
  });

  it('drops, masks and hashes with a keyed hash, as each rule says', () => {
    const redactor = new Redactor(
      [
        { field: 'x-api-key', action: 'DROP' },
        { field: 'user', action: 'HASH' },
        { field: 'cookie', action: 'HASH' },
        { field: 'responseCode', action: 'MASK' },
      ],
      KEY,
    );
    const redacted = redactor.redact(
      new Map<string, AttributeValue>([
        ['user', 'alice'],
        ['responseCode', 403n],
        ['headers', new FlatStringMap(['x-api-key', 'k', 'cookie', 'session=1'])],
      ]),
    );
    assert.deepEqual(Object.fromEntries(redacted), {
      headers: { cookie: hmac('session=1') },
      responseCode: '[REDACTED]',
      user: hmac('alice'),
    });
    assert.notEqual(
      hmac('alice'),
      `hmac-sha256:${createHmac('sha256', 'another key').update('alice').digest('hex')}`,
    );
  });

  it('redacts every record of one shape on its own: no value of an earlier one, keys in name order', () => {
    const redactor = new Redactor([{ field: 'token', action: 'DROP' }], undefined);
    const records: Map<string, AttributeValue>[] = [
      new Map<string, AttributeValue>([
        ['zeta', 1n],
        ['token', 't1'],
        ['__proto__', 'p1'],
        ['alpha', new FlatStringMap(['b', '2', 'a', '1'])],
        ['constructor', true],
      ]),
      new Map<string, AttributeValue>([
        ['zeta', 'now a string'],
        ['token', 't2'],
        ['__proto__', 7n],
        ['alpha', new FlatStringMap([])],
        ['constructor', new Duration(1, 500_000_000)],
      ]),
    ];
    for (let round = 0; round < 3; round++) {
      for (const [i, variables] of records.entries()) {
        const out = redactor.redactToObject(variables);
        assert.equal(Object.getPrototypeOf(out), Object.prototype);
        assert.deepEqual(Object.keys(out), ['__proto__', 'alpha', 'constructor', 'zeta']);
        const expected =
          i === 0
            ? '{"__proto__":"p1","alpha":{"a":"1","b":"2"},"constructor":true,"zeta":1}'
            : '{"__proto__":7,"alpha":{},"constructor":"1.5s","zeta":"now a string"}';
        assert.equal(JSON.stringify(out), expected, `record ${i}, round ${round}`);
      }
    }
  });

  it('redacts before the record is built, so ECS fields never carry a redacted value', () => {
    const record = buildAuditRecord(
      instance({ sourcePrincipal: 'alice', path: '/x' }),
      CONTEXT,
      new Redactor([{ field: 'sourcePrincipal', action: 'DROP' }], undefined),
    );
    assert.equal(JSON.stringify(record).includes('alice'), false);
  });

  it('finds every problem in a set of rules', () => {
    assert.deepEqual(
      checkRedactionRules(
        [
          { field: 'cookie', action: 'MASK' },
          { field: 'Cookie', action: 'HASH' },
          { field: '', action: 'DROP' },
        ],
        undefined,
        'redact',
      ),
      [
        { path: 'redact[1].field', message: 'repeats redact[0].field "Cookie"' },
        {
          path: 'redact[1].action',
          message: 'HASH needs hashKey: set params.hashKey to a secret of at least 16 characters',
        },
        { path: 'redact[2].field', message: 'must not be empty' },
      ],
    );
  });
});
