/**
 * Quota specs: which requests ask the policy server for which quotas, and how much each
 * charges — the proxy configuration's `policy.quotas` section. Compiled once, when the
 * configuration is applied; a request is tested by plain functions.
 *
 * ```yaml
 * policy:
 *   quotas:
 *     # Rules in the form of Istio's QuotaSpec `spec.rules`, for every request of this proxy.
 *     rules:
 *       - match:                       # any clause matching is enough (none: every request)
 *           - clause:                  # every attribute of a clause must match
 *               request.path: { prefix: /api/ }
 *               request.headers[x-user]: { regex: "[a-z]+" }
 *         quotas: [{ quota: requestcount, charge: 1 }]
 *     # Or Istio's own resources, unchanged: QuotaSpecs, and QuotaSpecBindings that bind
 *     # them to services (by destination.service.name or .host; "*" binds to every service).
 *     specs: [ { apiVersion: config.istio.io/v1alpha2, kind: QuotaSpec, metadata: {name: rc}, spec: {rules: [...]} } ]
 *     bindings: [ { kind: QuotaSpecBinding, metadata: {name: b}, spec: {services: [{name: catalog}], quotaSpecs: [{name: rc}]} } ]
 *     # How each quota is asked for: exact (default; every request asks the server) or
 *     # prefetch (a local allowance fetched ahead of need; see quota-prefetch.ts).
 *     modes: { requestcount: prefetch }
 * ```
 *
 * A clause names an attribute, or a string-map attribute and key as `name[key]`; the
 * value is compared as text (exact, prefix, or an RE2 regular expression matching the
 * whole value). An absent attribute matches nothing. Several rules naming one quota add
 * their charges, as Istio's proxy did.
 */
import { isStringMap, type Bag } from '../../attributes';
import { compileWholeMatch } from '../config-reader';

type Problems = { path: string; message: string }[];

/** How a quota is asked for. */
export type QuotaMode = 'exact' | 'prefetch';

/** One quota a request asks for. */
export interface QuotaNeed {
  readonly name: string;
  readonly charge: number;
  readonly mode: QuotaMode;
}

type ValueTest = (value: string) => boolean;
type BagTest = (bag: Bag) => boolean;

interface CompiledRule {
  /** Any of them; empty: every request. */
  readonly clauses: readonly BagTest[];
  readonly quotas: readonly { readonly name: string; readonly charge: number }[];
  /** Services the rule is bound to (QuotaSpecBinding); undefined: every request. */
  readonly services?: readonly string[];
}

/** The compiled `policy.quotas` section. */
export class QuotaSpecs {
  constructor(
    private readonly rules: readonly CompiledRule[],
    private readonly modes: ReadonlyMap<string, QuotaMode>,
  ) {}

  get empty(): boolean {
    return this.rules.length === 0;
  }

  /** The quotas `bag` asks for, charges of one quota added; empty when none applies. */
  needsOf(bag: Bag): QuotaNeed[] {
    const needs: QuotaNeed[] = [];
    for (const rule of this.rules) {
      if (rule.services !== undefined && !servesAny(bag, rule.services)) continue;
      if (rule.clauses.length > 0 && !rule.clauses.some((clause) => clause(bag))) continue;
      for (const quota of rule.quotas) {
        const same = needs.findIndex((n) => n.name === quota.name);
        if (same >= 0) needs[same] = { ...needs[same]!, charge: needs[same]!.charge + quota.charge };
        else
          needs.push({ name: quota.name, charge: quota.charge, mode: this.modes.get(quota.name) ?? 'exact' });
      }
    }
    return needs;
  }
}

export const NO_QUOTA_SPECS = new QuotaSpecs([], new Map());

function servesAny(bag: Bag, services: readonly string[]): boolean {
  const name = bag.get('destination.service.name');
  const host = bag.get('destination.service.host');
  for (const service of services) {
    if (service === '*' || service === name || service === host) return true;
    if (typeof host === 'string' && host.startsWith(`${service}.`)) return true;
  }
  return false;
}

/** Reads `policy.quotas`; every problem is listed with its path. */
export function parseQuotaSpecs(section: unknown, problems: Problems): QuotaSpecs {
  if (section === undefined || section === null) return NO_QUOTA_SPECS;
  if (!isRecord(section)) {
    problems.push({
      path: 'policy.quotas',
      message: `must be a mapping of rules, specs, bindings and modes`,
    });
    return NO_QUOTA_SPECS;
  }
  unknownKeys(section, ['rules', 'specs', 'bindings', 'modes'], 'policy.quotas', problems);
  const rules: CompiledRule[] = [];
  for (const rule of listAt(section['rules'], 'policy.quotas.rules', problems).map((r, i) =>
    parseRule(r, `policy.quotas.rules[${i}]`, problems),
  )) {
    if (rule !== undefined) rules.push(rule);
  }
  // QuotaSpecs by name (and namespace), then bindings put their rules to work.
  const specs = new Map<string, Omit<CompiledRule, 'services'>[]>();
  listAt(section['specs'], 'policy.quotas.specs', problems).forEach((spec, i) => {
    const path = `policy.quotas.specs[${i}]`;
    const name = resourceName(spec, 'QuotaSpec', path, problems);
    if (name === undefined || !isRecord(spec)) return;
    const metadata = spec['metadata'] as Record<string, unknown>;
    const body = spec['spec'];
    const specRules = isRecord(body) ? body['rules'] : undefined;
    const compiled = listAt(specRules, `${path}.spec.rules`, problems)
      .map((r, j) => parseRule(r, `${path}.spec.rules[${j}]`, problems))
      .filter((r) => r !== undefined);
    specs.set(name, compiled);
    if (typeof metadata['namespace'] === 'string') specs.set(`${name}.${metadata['namespace']}`, compiled);
  });
  listAt(section['bindings'], 'policy.quotas.bindings', problems).forEach((binding, i) => {
    const path = `policy.quotas.bindings[${i}]`;
    if (resourceName(binding, 'QuotaSpecBinding', path, problems) === undefined || !isRecord(binding)) return;
    const body = isRecord(binding['spec']) ? binding['spec'] : {};
    const services = listAt(body['services'], `${path}.spec.services`, problems).map((s, j) => {
      const name = isRecord(s) ? s['name'] : undefined;
      if (typeof name !== 'string' || name === '') {
        problems.push({
          path: `${path}.spec.services[${j}].name`,
          message: 'must be a service name, or "*"',
        });
      }
      return String(name);
    });
    listAt(body['quotaSpecs'], `${path}.spec.quotaSpecs`, problems).forEach((ref, j) => {
      const refName = isRecord(ref) ? ref['name'] : undefined;
      const namespace = isRecord(ref) && typeof ref['namespace'] === 'string' ? ref['namespace'] : undefined;
      const withNamespace =
        typeof refName !== 'string'
          ? undefined
          : ((namespace === undefined ? undefined : specs.get(`${refName}.${namespace}`)) ??
            specs.get(refName));
      if (withNamespace === undefined) {
        problems.push({
          path: `${path}.spec.quotaSpecs[${j}]`,
          message: `names no QuotaSpec in policy.quotas.specs; known: ${[...specs.keys()].join(', ') || 'none'}`,
        });
        return;
      }
      for (const rule of withNamespace) rules.push({ ...rule, services });
    });
  });
  const modes = new Map<string, QuotaMode>();
  const modeSection = section['modes'];
  if (modeSection !== undefined && modeSection !== null) {
    if (!isRecord(modeSection)) {
      problems.push({ path: 'policy.quotas.modes', message: 'must map quota names to exact or prefetch' });
    } else {
      for (const [name, mode] of Object.entries(modeSection)) {
        if (mode !== 'exact' && mode !== 'prefetch') {
          problems.push({
            path: `policy.quotas.modes.${name}`,
            message: `must be exact or prefetch, got ${JSON.stringify(mode)}`,
          });
        } else modes.set(name, mode);
      }
    }
  }
  return new QuotaSpecs(rules, modes);
}

function parseRule(rule: unknown, path: string, problems: Problems): CompiledRule | undefined {
  if (!isRecord(rule)) {
    problems.push({ path, message: 'must be a mapping with match and quotas' });
    return undefined;
  }
  unknownKeys(rule, ['match', 'quotas'], path, problems);
  const clauses = listAt(rule['match'], `${path}.match`, problems).map((m, i) =>
    parseClause(m, `${path}.match[${i}]`, problems),
  );
  const quotas = listAt(rule['quotas'], `${path}.quotas`, problems).map((q, i) => {
    const at = `${path}.quotas[${i}]`;
    const name = isRecord(q) ? q['quota'] : undefined;
    const charge = isRecord(q) ? (q['charge'] ?? 1) : undefined;
    if (isRecord(q)) unknownKeys(q, ['quota', 'charge'], at, problems);
    if (typeof name !== 'string' || name === '')
      problems.push({ path: `${at}.quota`, message: 'must name a quota' });
    if (typeof charge !== 'number' || !Number.isInteger(charge) || charge < 1) {
      problems.push({
        path: `${at}.charge`,
        message: `must be a whole number >= 1, got ${JSON.stringify(charge)}`,
      });
    }
    return { name: String(name), charge: Number(charge) };
  });
  if (quotas.length === 0) problems.push({ path: `${path}.quotas`, message: 'must name at least one quota' });
  return { clauses, quotas };
}

/** `{clause: {attribute: {exact|prefix|regex: text}}}`: every attribute must match. */
function parseClause(match: unknown, path: string, problems: Problems): BagTest {
  const clause = isRecord(match) ? match['clause'] : undefined;
  if (!isRecord(clause)) {
    problems.push({ path, message: 'must be {clause: {attribute: {exact|prefix|regex: text}}}' });
    return () => false;
  }
  const tests: BagTest[] = [];
  for (const [attribute, condition] of Object.entries(clause)) {
    const at = `${path}.clause.${attribute}`;
    const test = parseValueTest(condition, at, problems);
    const keyed = /^([^[\]]+)\[([^[\]]+)\]$/.exec(attribute);
    if (keyed !== null) {
      const name = keyed[1]!;
      // Header names are lower case in the bag (HTTP/2 and Node's HTTP/1.1 both fold them).
      const key = name.endsWith('.headers') ? keyed[2]!.toLowerCase() : keyed[2]!;
      tests.push((bag) => {
        const map = bag.get(name);
        const value = isStringMap(map) ? map.get(key) : undefined;
        return value !== undefined && test(value);
      });
    } else {
      tests.push((bag) => {
        const value = bag.get(attribute);
        return value !== undefined && test(typeof value === 'string' ? value : String(value));
      });
    }
  }
  return (bag) => tests.every((t) => t(bag));
}

function parseValueTest(condition: unknown, path: string, problems: Problems): ValueTest {
  if (isRecord(condition) && Object.keys(condition).length === 1) {
    const [kind, text] = Object.entries(condition)[0]!;
    if (typeof text === 'string') {
      if (kind === 'exact') return (v) => v === text;
      if (kind === 'prefix') return (v) => v.startsWith(text);
      if (kind === 'regex') {
        const regex = compileWholeMatch(text, `${path}.regex`, problems);
        return regex === undefined ? () => false : (v) => regex.test(v);
      }
    }
  }
  problems.push({ path, message: 'must be one of {exact: text}, {prefix: text}, {regex: text}' });
  return () => false;
}

function resourceName(resource: unknown, kind: string, path: string, problems: Problems): string | undefined {
  if (!isRecord(resource) || (resource['kind'] !== undefined && resource['kind'] !== kind)) {
    problems.push({ path, message: `must be a ${kind} resource (kind: ${kind}, metadata: {name}, spec)` });
    return undefined;
  }
  const metadata = resource['metadata'];
  const name = isRecord(metadata) ? metadata['name'] : undefined;
  if (typeof name !== 'string' || name === '') {
    problems.push({ path: `${path}.metadata.name`, message: 'must be the resource name' });
    return undefined;
  }
  return name;
}

function listAt(value: unknown, path: string, problems: Problems): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.push({ path, message: 'must be a list' });
    return [];
  }
  return value;
}

function unknownKeys(
  record: Record<string, unknown>,
  known: readonly string[],
  path: string,
  problems: Problems,
): void {
  for (const key of Object.keys(record)) {
    if (!known.includes(key))
      problems.push({ path: `${path}.${key}`, message: `unknown key; known: ${known.join(', ')}` });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
