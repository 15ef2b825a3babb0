/**
 * The built-ins Switchboard provides to WebAssembly policies (builtins.ts) against OPA's own
 * implementations: every expression below is compiled to WebAssembly and evaluated here,
 * and evaluated by `opa eval` (OPA's Go evaluator) on the same input; each rule must have
 * the same value, or be undefined in both (a built-in error makes an expression undefined
 * in both).
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import {
  createHmac,
  generateKeyPairSync,
  sign,
  constants as cryptoConstants,
  type KeyObject,
} from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { compileRego, PROVIDED_BUILTINS, runOpa, WasmPolicy } from '../../../../adapters/acl/opa';
import { requireOpaCompiler, TempDirs } from '../../../support/opa';

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

function token(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  signer: (data: Buffer) => Buffer,
): string {
  const signed = `${b64(header)}.${b64(payload)}`;
  return `${signed}.${signer(Buffer.from(signed)).toString('base64url')}`;
}

const NOW_S = 1_735_787_045; // 2025-01-02T03:04:05Z

/** Expressions over `input`, by rule name. */
const CASES: Record<string, string> = {
  sha256: 'crypto.sha256(input.text)',
  sha1: 'crypto.sha1(input.text)',
  md5: 'crypto.md5(input.text)',
  hmac_sha256: 'crypto.hmac.sha256(input.text, "key")',
  hmac_sha1: 'crypto.hmac.sha1(input.text, "key")',
  hmac_sha512: 'crypto.hmac.sha512(input.text, "key")',
  hmac_md5: 'crypto.hmac.md5(input.text, "key")',
  hmac_equal_same: 'crypto.hmac.equal("abc", "abc")',
  hmac_equal_other: 'crypto.hmac.equal("abc", "abd")',
  hex_encode: 'hex.encode(input.text)',
  hex_decode: 'hex.decode("68656c6c6f")',
  hex_decode_bad: 'hex.decode("zz")',
  b64url_nopad: 'base64url.encode_no_pad("hi?>>")',
  urlquery_encode: 'urlquery.encode("a b&c=d/é~*!\'()")',
  urlquery_decode: 'urlquery.decode("a+b%26c%3Dd%C3%A9")',
  urlquery_decode_bad: 'urlquery.decode("%zz")',
  // A set's values are encoded in the order the module hands them over (OPA sorts them).
  urlquery_encode_object: 'urlquery.encode_object({"b": "2", "a": ["1", "x y"], "c": {"y"}})',
  urlquery_decode_object: 'urlquery.decode_object("a=1&b=2&a=3&c")',
  regex_find_all: 'regex.find_n("[a-c]+", "abcxxcbaxa", -1)',
  regex_find_two: 'regex.find_n("[a-c]+", "abcxxcbaxa", 2)',
  regex_find_none: 'regex.find_n("[a-c]+", "abcxxcbaxa", 0)',
  regex_find_flags: 'regex.find_n("(?i)ab", "AbaBab", -1)',
  regex_find_empty: 'regex.find_n("a*", "baaac", -1)',
  any_prefix: 'strings.any_prefix_match("abcdef", ["xyz", "abc"])',
  any_prefix_sets: 'strings.any_prefix_match({"x", "ab"}, "a")',
  any_prefix_none: 'strings.any_prefix_match("abc", ["b"])',
  any_suffix: 'strings.any_suffix_match(["x.example.com", "y.org"], ".org")',
  count: 'strings.count("cheese", "e")',
  count_empty: 'strings.count("five", "")',
  count_overlap: 'strings.count("aaaa", "aa")',
  indexof_n: 'indexof_n("dogcatdogcat", "dog")',
  indexof_n_overlap: 'indexof_n("aaa", "aa")',
  indexof_n_runes: 'indexof_n("héllo wörld", "l")',
  bytes_kib: 'units.parse_bytes("1.5KiB")',
  bytes_kb: 'units.parse_bytes("10KB")',
  bytes_lower: 'units.parse_bytes("10kib")',
  bytes_plain: 'units.parse_bytes("1000")',
  bytes_fraction: 'units.parse_bytes("0.5")',
  bytes_exponent: 'units.parse_bytes("1e3")',
  bytes_big: 'units.parse_bytes("8EiB")',
  bytes_space: 'units.parse_bytes("1 KB")',
  bytes_unknown: 'units.parse_bytes("12XB")',
  units_milli: 'units.parse("10m")',
  units_mega: 'units.parse("3M")',
  units_kilo: 'units.parse("1.5k")',
  units_binary: 'units.parse("2Mi")',
  units_bad: 'units.parse("x")',
  rfc3339: 'time.parse_rfc3339_ns("2025-01-02T03:04:05Z")',
  rfc3339_fraction: 'time.parse_rfc3339_ns("2025-01-02T03:04:05.123456789Z")',
  rfc3339_offset: 'time.parse_rfc3339_ns("2025-01-02T05:04:05+02:00")',
  rfc3339_negative_offset: 'time.parse_rfc3339_ns("2025-01-01T21:34:05.5-05:30")',
  rfc3339_bad_month: 'time.parse_rfc3339_ns("2025-13-01T00:00:00Z")',
  rfc3339_bad_day: 'time.parse_rfc3339_ns("2025-02-30T00:00:00Z")',
  rfc3339_not_rfc3339: 'time.parse_rfc3339_ns("2025-01-02 03:04:05")',
  duration: 'time.parse_duration_ns("1h2m3.5s")',
  duration_negative: 'time.parse_duration_ns("-1.5ms")',
  duration_days: 'time.parse_duration_ns("1.5d2h")',
  duration_weeks_years: 'time.parse_duration_ns("-1y2w")',
  duration_bad: 'time.parse_duration_ns("1x")',
  date: 'time.date(input.now)',
  date_zone: 'time.date([input.now, "America/New_York"])',
  clock: 'time.clock(input.now)',
  clock_zone: 'time.clock([input.now, "Asia/Kolkata"])',
  weekday: 'time.weekday(input.now)',
  add_month_overflow: 'time.add_date(time.parse_rfc3339_ns("2025-01-31T10:00:00Z"), 0, 1, 0)',
  add_leap_year: 'time.add_date(time.parse_rfc3339_ns("2024-02-29T00:00:00.5Z"), 1, 0, 0)',
  add_back: 'time.add_date(input.now, 0, 0, -400)',
  jwt_decode: 'io.jwt.decode(input.hs256)',
  jwt_decode_bad: 'io.jwt.decode("not.a")',
  verify_hs256: 'io.jwt.verify_hs256(input.hs256, "secret")',
  verify_hs256_wrong: 'io.jwt.verify_hs256(input.hs256, "guess")',
  verify_rs256_pem: 'io.jwt.verify_rs256(input.rs256, input.rsa_pem)',
  verify_rs256_jwks: 'io.jwt.verify_rs256(input.rs256, input.rsa_jwks)',
  verify_rs256_cert: 'io.jwt.verify_rs256(input.cert_rs256, input.cert)',
  verify_rs256_other_key: 'io.jwt.verify_rs256(input.rs256, input.other_pem)',
  verify_ps256: 'io.jwt.verify_ps256(input.ps256, input.rsa_pem)',
  verify_es256: 'io.jwt.verify_es256(input.es256, input.ec_pem)',
  verify_es256_tampered: 'io.jwt.verify_es256(input.es256_tampered, input.ec_pem)',
  verify_eddsa: 'io.jwt.verify_eddsa(input.eddsa, input.ed_pem)',
  decode_verify_secret: `io.jwt.decode_verify(input.hs256, {"secret": "secret", "time": ${NOW_S}000000000})`,
  decode_verify_expired: `io.jwt.decode_verify(input.hs256, {"secret": "secret", "time": ${NOW_S + 7200}000000000})`,
  decode_verify_early: `io.jwt.decode_verify(input.hs256, {"secret": "secret", "time": ${NOW_S - 7200}000000000})`,
  decode_verify_iss_aud: `io.jwt.decode_verify(input.rs256, {"cert": input.rsa_jwks, "iss": "idp", "aud": "api", "time": ${NOW_S}000000000})`,
  decode_verify_wrong_aud: `io.jwt.decode_verify(input.rs256, {"cert": input.rsa_jwks, "aud": "other", "time": ${NOW_S}000000000})`,
  decode_verify_missing_aud: `io.jwt.decode_verify(input.rs256, {"cert": input.rsa_jwks, "time": ${NOW_S}000000000})`,
  decode_verify_wrong_iss: `io.jwt.decode_verify(input.rs256, {"cert": input.rsa_jwks, "iss": "evil", "aud": "api", "time": ${NOW_S}000000000})`,
  decode_verify_alg: `io.jwt.decode_verify(input.hs256, {"secret": "secret", "alg": "HS512", "time": ${NOW_S}000000000})`,
  decode_verify_bad_secret: `io.jwt.decode_verify(input.hs256, {"secret": "guess", "time": ${NOW_S}000000000})`,
};

/** JSON with object keys sorted: Rego objects have no key order. */
function canonical(value: unknown): string {
  return (
    JSON.stringify(value, (_key, v: unknown) =>
      typeof v === 'object' && v !== null && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : v,
    ) ?? 'undefined'
  );
}

function pem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }) as string;
}

describe('adapters/acl/opa: built-ins provided in JavaScript, against OPA itself', function () {
  this.timeout(60_000);
  const temp = new TempDirs();
  let opa: string;

  before(() => {
    opa = requireOpaCompiler();
  });
  after(() => temp.removeAll());

  it('covers every built-in it provides', () => {
    const used = new Set(
      Object.values(CASES).flatMap((e) => [...e.matchAll(/([a-z_][a-z0-9_.]*)\(/g)].map((m) => m[1]!)),
    );
    const untested = PROVIDED_BUILTINS.filter(
      (name) =>
        !used.has(name) &&
        !['time.now_ns'].includes(name) &&
        !/^io\.jwt\.verify_(hs|rs|ps|es)(384|512)$/.test(name),
    );
    assert.deepEqual(untested, [], 'add a case for each');
  });

  it('gives the values OPA gives (or is undefined where OPA is)', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ed = generateKeyPairSync('ed25519');
    const dir = temp.make();
    // A self-signed certificate, as OPA also takes one.
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=switchboard-test',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const certKey = readFileSync(path.join(dir, 'key.pem'), 'utf8');
    const claims = { sub: 'bob', iss: 'idp', aud: 'api', exp: NOW_S + 3600, nbf: NOW_S - 3600 };
    const es256 = token({ alg: 'ES256' }, claims, (d) =>
      sign('sha256', d, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }),
    );
    const input = {
      text: 'hello ☃',
      now: Number(BigInt(NOW_S) * 1_000_000_000n),
      hs256: token({ alg: 'HS256', typ: 'JWT' }, { sub: 'bob', exp: NOW_S + 3600, nbf: NOW_S - 3600 }, (d) =>
        createHmac('sha256', 'secret').update(d).digest(),
      ),
      rs256: token({ alg: 'RS256', kid: 'k1' }, claims, (d) => sign('sha256', d, rsa.privateKey)),
      cert_rs256: token({ alg: 'RS256' }, claims, (d) => sign('sha256', d, certKey)),
      ps256: token({ alg: 'PS256' }, claims, (d) =>
        sign('sha256', d, {
          key: rsa.privateKey,
          padding: cryptoConstants.RSA_PKCS1_PSS_PADDING,
          saltLength: 32,
        }),
      ),
      es256,
      es256_tampered: es256.replace(/\.[^.]+\./, `.${b64({ ...claims, sub: 'mallory' })}.`),
      eddsa: token({ alg: 'EdDSA' }, claims, (d) => sign(null, d, ed.privateKey)),
      rsa_pem: pem(rsa.publicKey),
      other_pem: pem(other.publicKey),
      rsa_jwks: JSON.stringify({
        keys: [{ ...rsa.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256' }],
      }),
      cert: readFileSync(path.join(dir, 'cert.pem'), 'utf8'),
      ec_pem: pem(ec.publicKey),
      ed_pem: pem(ed.publicKey),
    };
    // Rule names get a prefix so that none shadows a built-in (indexof_n, count…).
    const rules = Object.entries(CASES).map(([name, expression]) => `case_${name} := ${expression}`);
    const module = `package cases\nimport rego.v1\n${rules.join('\n')}\n`;
    const moduleFile = path.join(dir, 'cases.rego');
    writeFileSync(moduleFile, module);
    const inputFile = path.join(dir, 'input.json');
    writeFileSync(inputFile, JSON.stringify(input));

    const evaluated = await runOpa(opa, [
      'eval',
      '--format',
      'json',
      '-d',
      moduleFile,
      '-i',
      inputFile,
      'data.cases',
    ]);
    assert.equal(evaluated.code, 0, evaluated.stderr + evaluated.stdout);
    const expected = (
      JSON.parse(evaluated.stdout) as { result: [{ expressions: [{ value: Record<string, unknown> }] }] }
    ).result[0].expressions[0].value;

    const compiled = await compileRego({
      opa,
      modules: [{ label: 'cases.rego', text: module }],
      entrypoints: Object.keys(CASES).map((name) => `cases/case_${name}`),
      regoVersion: 'v1',
    });
    const policy = await WasmPolicy.load(compiled.wasm);
    const instance = policy.instantiate({ nowMs: NOW_S * 1000 });
    const mismatches: string[] = [];
    for (const name of Object.keys(CASES)) {
      const resultSet = instance.evaluate(input, `cases/case_${name}`) as Array<{ result: unknown }>;
      const actual = resultSet.length === 0 ? undefined : resultSet[0]!.result;
      const want = expected[`case_${name}`];
      if (canonical(actual) !== canonical(want)) {
        mismatches.push(
          `${name}: ${CASES[name]} gave ${JSON.stringify(actual)}, OPA gives ${JSON.stringify(want)}`,
        );
      }
    }
    assert.deepEqual(mismatches, []);
    // The cases are not all undefined: most have values.
    assert.ok(
      Object.keys(expected).length >= Object.keys(CASES).length - 15,
      `${Object.keys(expected).length} defined`,
    );
  });
});
