/**
 * The runtime configuration: resources turned into what the dispatcher runs — the
 * attribute manifest, handler configurations (parsed and validated by their adapters),
 * compiled instances and rules, and the rules of each namespace in order. Building it
 * does no I/O; handlers are built afterwards (handler-set.ts). Every problem of every
 * resource is reported at once, with file, line and path; any problem refuses the whole.
 */
import {
  STANDARD_MANIFEST,
  ValueType,
  parseValueType,
  type AttributeInfo,
  type AttributeManifest,
} from '../attributes';
import { parseWithSchema, type AdapterInfo, type AdapterRegistry } from '../adapters';
import { ExpressionError, compileExpression, type CompiledExpression } from '../expressions';
import { TEMPLATES, type TemplateInfo } from '../templates';
import type { ConfigError } from './config-error';
import type { ConfigResource } from './config-resource';
import { compileInstance, type InstanceBuilder, type InstanceProblem } from './instance-builder';
import { NameTable, qualifiedName } from './resource-names';

/** What happens to a call when a handler faults (throws, or misses its deadline). */
export type FailurePolicy = 'FAIL_CLOSE' | 'FAIL_OPEN';

/** A configured handler: an adapter and its parsed configuration. */
export interface HandlerConfig {
  readonly name: string;
  readonly kind: string;
  readonly namespace: string;
  /** `name.kind.namespace`. */
  readonly qualifiedName: string;
  readonly adapter: AdapterInfo;
  /** The adapter's configuration, parsed, defaulted and frozen. */
  readonly config: unknown;
  /** Identifies the adapter and configuration: a handler whose key did not change is kept across reloads. */
  readonly configKey: string;
  readonly failurePolicy: FailurePolicy | undefined;
  readonly resource: ConfigResource;
}

/** A configured instance. */
export interface InstanceConfig {
  readonly name: string;
  readonly kind: string;
  readonly namespace: string;
  readonly qualifiedName: string;
  readonly builder: InstanceBuilder;
  readonly template: TemplateInfo;
}

/** A header operation of a rule, with its values compiled. */
export interface HeaderOperationConfig {
  readonly name: string;
  readonly values: readonly CompiledExpression[];
  readonly operation: 'REPLACE' | 'REMOVE' | 'APPEND';
}

/** One action of a rule: a handler and the instances it receives. */
export interface ActionConfig {
  readonly handler: HandlerConfig;
  readonly instances: readonly InstanceConfig[];
}

/** A configured rule. */
export interface RuleConfig {
  readonly name: string;
  readonly namespace: string;
  readonly qualifiedName: string;
  /** Undefined when the rule has no match: it applies to every request of its namespace. */
  readonly match: CompiledExpression | undefined;
  readonly actions: readonly ActionConfig[];
  readonly requestHeaderOperations: readonly HeaderOperationConfig[];
  readonly responseHeaderOperations: readonly HeaderOperationConfig[];
  /** The rule's own failure policy; when undefined, each handler's, else fail closed. */
  readonly failurePolicy: FailurePolicy | undefined;
}

/** The runtime configuration. Immutable. */
export interface RuntimeConfig {
  readonly manifest: AttributeManifest;
  readonly defaultNamespace: string;
  readonly handlers: ReadonlyMap<string, HandlerConfig>;
  readonly instances: ReadonlyMap<string, InstanceConfig>;
  /** Rules by namespace, in configuration order. */
  readonly rulesByNamespace: ReadonlyMap<string, readonly RuleConfig[]>;
  /** Resources kept for the proxy (QuotaSpec, QuotaSpecBinding, HTTPAPISpec…), as written. */
  readonly proxyResources: readonly ConfigResource[];
}

export interface RuntimeConfigOptions {
  /** The namespace whose rules apply to all traffic, and of resources that name none. Default `istio-system`. */
  readonly defaultNamespace?: string;
}

export const DEFAULT_NAMESPACE = 'istio-system';

/** Kinds kept for the proxy, not run by the server. */
const PROXY_KINDS = new Set(['QuotaSpec', 'QuotaSpecBinding', 'HTTPAPISpec', 'HTTPAPISpecBinding']);

const FAILURE_POLICIES: readonly FailurePolicy[] = ['FAIL_CLOSE', 'FAIL_OPEN'];

/** The outcome: the configuration, or every problem found. */
export type RuntimeConfigOutcome = { ok: true; config: RuntimeConfig } | { ok: false; errors: ConfigError[] };

/** Builds the runtime configuration from loaded resources. */
export function buildRuntimeConfig(
  resources: readonly ConfigResource[],
  registry: AdapterRegistry,
  options: RuntimeConfigOptions = {},
): RuntimeConfigOutcome {
  const defaultNamespace = options.defaultNamespace ?? DEFAULT_NAMESPACE;
  const errors: ConfigError[] = [];
  const faulty = new Set<ConfigResource>();
  const report = (resource: ConfigResource, path: string | undefined, message: string): void => {
    faulty.add(resource);
    errors.push({
      file: resource.file,
      line: path === undefined ? resource.line : resource.lineOf(path),
      ...(path === undefined ? {} : { path }),
      message,
    });
  };
  const namespaceOf = (r: ConfigResource): string => r.namespace ?? defaultNamespace;

  // 1. The vocabulary, first: every expression is checked against it.
  let manifest = STANDARD_MANIFEST;
  const handlerResources: ConfigResource[] = [];
  const instanceResources: Array<{ resource: ConfigResource; template: TemplateInfo | undefined }> = [];
  const ruleResources: ConfigResource[] = [];
  const proxyResources: ConfigResource[] = [];
  for (const resource of resources) {
    const kind = resource.kind;
    if (kind === 'attributemanifest') {
      checkSpecFields(resource, ['name', 'revision', 'attributes'], 'an attributemanifest', report);
      const extended = manifest.extend(manifestAttributes(resource, report));
      for (const conflict of extended.conflicts) {
        report(
          resource,
          `spec.attributes.${conflict.name}.valueType`,
          `attribute ${conflict.name} is already declared as ${ValueType[conflict.declared]}; one attribute has one type`,
        );
      }
      manifest = extended.manifest;
    } else if (kind === 'handler' || registry.get(kind) !== undefined) handlerResources.push(resource);
    else if (kind === 'instance') instanceResources.push({ resource, template: undefined });
    else if (TEMPLATES.has(kind)) instanceResources.push({ resource, template: TEMPLATES.get(kind) });
    else if (kind === 'rule') ruleResources.push(resource);
    else if (PROXY_KINDS.has(kind)) proxyResources.push(resource);
    else report(resource, 'kind', unknownKind(kind, registry));
  }

  // 2. Handlers: each adapter parses and validates its own configuration.
  const handlers = new NameTable<HandlerConfig>();
  for (const resource of handlerResources) {
    const legacy = resource.kind !== 'handler';
    const adapterKey = resource.spec.compiledAdapter !== undefined ? 'compiledAdapter' : 'adapter';
    const adapterName = legacy ? resource.kind : stringField(resource.spec[adapterKey]);
    if (!legacy) checkSpecFields(resource, HANDLER_FIELDS, 'a handler', report);
    const paramsPath = legacy ? 'spec' : 'spec.params';
    if (adapterName === undefined) {
      report(resource, 'spec', 'a handler needs compiledAdapter: the name of the adapter, such as denier');
      continue;
    }
    const adapter = registry.get(adapterName);
    if (adapter === undefined) {
      report(
        resource,
        legacy ? 'kind' : `spec.${adapterKey}`,
        `no adapter named ${adapterName}; adapters: ${registry.names().join(', ')}`,
      );
      continue;
    }
    const rawParams = legacy ? withoutKeys(resource.spec, ['failurePolicy']) : resource.spec.params;
    const parsed = parseWithSchema(adapter.config, rawParams ?? {}, paramsPath);
    if (!parsed.ok) {
      for (const p of parsed.problems) report(resource, p.path, `${adapterName}: ${p.message}`);
      continue;
    }
    const validationProblems = adapter.validate?.(parsed.value) ?? [];
    for (const p of validationProblems) {
      const path = p.path === '' ? paramsPath : `${paramsPath}.${p.path}`;
      report(resource, path, `${adapterName}: ${p.message}`);
    }
    if (validationProblems.length > 0) continue;
    const failurePolicy = readFailurePolicy(resource, report);
    const namespace = namespaceOf(resource);
    const entry: HandlerConfig = Object.freeze({
      name: resource.name,
      kind: resource.kind,
      namespace,
      qualifiedName: qualifiedName(resource.name, resource.kind, namespace),
      adapter,
      config: parsed.value,
      configKey: `${adapter.name}:${stableJson(parsed.value)}`,
      failurePolicy,
      resource,
    });
    if (!handlers.add(entry))
      report(
        resource,
        'metadata.name',
        `a second ${resource.kind} named ${resource.name} in namespace ${namespace}; names are unique per kind and namespace`,
      );
  }

  // 3. Instances: every field's expression compiled and type-checked against the template.
  const instances = new NameTable<InstanceConfig>();
  for (const { resource, template: legacyTemplate } of instanceResources) {
    const templateKey = resource.spec.compiledTemplate !== undefined ? 'compiledTemplate' : 'template';
    const templateName = legacyTemplate?.name ?? stringField(resource.spec[templateKey]);
    if (legacyTemplate === undefined) checkSpecFields(resource, INSTANCE_FIELDS, 'an instance', report);
    const template = legacyTemplate ?? (templateName === undefined ? undefined : TEMPLATES.get(templateName));
    if (template === undefined) {
      report(
        resource,
        templateName === undefined ? 'spec' : `spec.${templateKey}`,
        templateName === undefined
          ? 'an instance needs compiledTemplate: the name of a template, such as listentry'
          : `no template named ${templateName}; templates: ${[...TEMPLATES.keys()].join(', ')}`,
      );
      continue;
    }
    const namespace = namespaceOf(resource);
    const name = qualifiedName(resource.name, resource.kind, namespace);
    const problems: InstanceProblem[] = [];
    const params = legacyTemplate !== undefined ? resource.spec : resource.spec.params;
    const builder = compileInstance(
      name,
      template,
      params,
      legacyTemplate !== undefined ? 'spec' : 'spec.params',
      manifest,
      problems,
    );
    for (const p of problems) report(resource, p.path, p.message);
    if (problems.length > 0) continue;
    const entry: InstanceConfig = Object.freeze({
      name: resource.name,
      kind: resource.kind,
      namespace,
      qualifiedName: name,
      builder,
      template,
    });
    if (!instances.add(entry))
      report(
        resource,
        'metadata.name',
        `a second ${resource.kind} named ${resource.name} in namespace ${namespace}; names are unique per kind and namespace`,
      );
  }

  // References to handlers and instances with errors of their own are not errors again.
  const stub = (resource: ConfigResource): ResourceStub => {
    const namespace = namespaceOf(resource);
    return {
      name: resource.name,
      kind: resource.kind,
      namespace,
      qualifiedName: qualifiedName(resource.name, resource.kind, namespace),
    };
  };
  const faultyHandlers = new NameTable<ResourceStub>();
  for (const r of handlerResources) if (faulty.has(r)) faultyHandlers.add(stub(r));
  const faultyInstances = new NameTable<ResourceStub>();
  for (const { resource } of instanceResources) if (faulty.has(resource)) faultyInstances.add(stub(resource));

  // 4. Rules: match compiled as BOOL, references resolved, header operations compiled.
  const rulesByNamespace = new Map<string, RuleConfig[]>();
  for (const resource of ruleResources) {
    const namespace = namespaceOf(resource);
    const before = errors.length;
    const rule = compileRule(
      resource,
      namespace,
      manifest,
      { handlers, instances, faultyHandlers, faultyInstances },
      report,
    );
    if (rule === undefined || errors.length > before) continue;
    const list = rulesByNamespace.get(namespace) ?? [];
    list.push(rule);
    rulesByNamespace.set(namespace, list);
  }

  if (errors.length > 0) return { ok: false, errors: sortErrors(errors) };
  const byName = <T extends { qualifiedName: string }>(
    table: NameTable<T & { name: string; kind: string; namespace: string }>,
  ) => new Map([...table.values()].map((e) => [e.qualifiedName, e] as const));
  return {
    ok: true,
    config: Object.freeze({
      manifest,
      defaultNamespace,
      handlers: byName(handlers),
      instances: byName(instances),
      rulesByNamespace,
      proxyResources: Object.freeze(proxyResources),
    }),
  };
}

type Report = (resource: ConfigResource, path: string | undefined, message: string) => void;

interface ResourceStub {
  readonly name: string;
  readonly kind: string;
  readonly namespace: string;
  readonly qualifiedName: string;
}

/** What rules refer to: the handlers and instances that loaded, and those that did not. */
interface Referents {
  readonly handlers: NameTable<HandlerConfig>;
  readonly instances: NameTable<InstanceConfig>;
  readonly faultyHandlers: NameTable<ResourceStub>;
  readonly faultyInstances: NameTable<ResourceStub>;
}

function compileRule(
  resource: ConfigResource,
  namespace: string,
  manifest: AttributeManifest,
  referents: Referents,
  report: Report,
): RuleConfig | undefined {
  const { handlers, instances, faultyHandlers, faultyInstances } = referents;
  const spec = resource.spec;
  checkSpecFields(resource, RULE_FIELDS, 'a rule', report);
  let match: CompiledExpression | undefined;
  // YAML reads `match: true` as a boolean; it means the expression true.
  const matchSource = typeof spec.match === 'boolean' ? String(spec.match) : spec.match;
  if (matchSource !== undefined && matchSource !== null && matchSource !== '') {
    if (typeof matchSource !== 'string') {
      report(
        resource,
        'spec.match',
        'must be an expression of type BOOL, such as destination.service.name == "reviews"',
      );
    } else {
      try {
        match = compileExpression(matchSource, manifest, { expectedType: ValueType.BOOL });
      } catch (error) {
        if (!(error instanceof ExpressionError)) throw error;
        report(
          resource,
          'spec.match',
          `${error.kind} error in ${JSON.stringify(matchSource)} at ${error.message}`,
        );
      }
    }
  }
  const actions: ActionConfig[] = [];
  const rawActions = spec.actions ?? [];
  if (!Array.isArray(rawActions)) {
    report(resource, 'spec.actions', 'must be a list of actions: {handler, instances}');
  } else {
    rawActions.forEach((raw: unknown, i) => {
      const path = `spec.actions[${i}]`;
      if (raw === null || typeof raw !== 'object') {
        report(resource, path, 'must be a mapping with handler and instances');
        return;
      }
      const action = raw as Record<string, unknown>;
      for (const key of Object.keys(action)) {
        if (!ACTION_FIELDS.includes(key)) {
          report(
            resource,
            `${path}.${key}`,
            `is not a field of a rule action; its fields: ${ACTION_FIELDS.join(', ')}`,
          );
        }
      }
      const handlerRef = stringField(action.handler);
      if (handlerRef === undefined) {
        report(
          resource,
          `${path}.handler`,
          'is required: the handler to call, such as denyall or denyall.denier',
        );
        return;
      }
      const handler = resolveOne(
        handlers,
        faultyHandlers,
        handlerRef,
        namespace,
        'handler',
        resource,
        `${path}.handler`,
        report,
      );
      const refs = action.instances;
      if (!Array.isArray(refs) || refs.length === 0) {
        report(
          resource,
          `${path}.instances`,
          'must list the instances the handler receives, such as [ requestcount ]',
        );
        return;
      }
      const resolved: InstanceConfig[] = [];
      refs.forEach((ref: unknown, j) => {
        const instancePath = `${path}.instances[${j}]`;
        if (typeof ref !== 'string') {
          report(resource, instancePath, 'must be the name of an instance');
          return;
        }
        const instance = resolveOne(
          instances,
          faultyInstances,
          ref,
          namespace,
          'instance',
          resource,
          instancePath,
          report,
        );
        if (instance === undefined || handler === undefined) return;
        if (!handler.adapter.templates.includes(instance.template.name)) {
          report(
            resource,
            instancePath,
            `handler ${handler.qualifiedName} (adapter ${handler.adapter.name}) does not take ${instance.template.name} instances; it takes ${handler.adapter.templates.join(', ')}`,
          );
          return;
        }
        resolved.push(instance);
      });
      if (handler !== undefined) actions.push(Object.freeze({ handler, instances: Object.freeze(resolved) }));
    });
  }
  const requestHeaderOperations = compileHeaderOperations(
    resource,
    'requestHeaderOperations',
    manifest,
    report,
  );
  const responseHeaderOperations = compileHeaderOperations(
    resource,
    'responseHeaderOperations',
    manifest,
    report,
  );
  return Object.freeze({
    name: resource.name,
    namespace,
    qualifiedName: qualifiedName(resource.name, 'rule', namespace),
    match,
    actions: Object.freeze(actions),
    requestHeaderOperations,
    responseHeaderOperations,
    failurePolicy: readFailurePolicy(resource, report),
  });
}

function compileHeaderOperations(
  resource: ConfigResource,
  field: string,
  manifest: AttributeManifest,
  report: Report,
): readonly HeaderOperationConfig[] {
  const raw = resource.spec[field];
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    report(resource, `spec.${field}`, 'must be a list of {name, values, operation}');
    return [];
  }
  const out: HeaderOperationConfig[] = [];
  raw.forEach((op: unknown, i) => {
    const path = `spec.${field}[${i}]`;
    const o = (op ?? {}) as Record<string, unknown>;
    const name = stringField(o.name);
    if (name === undefined || name === '') {
      report(resource, `${path}.name`, 'is required: the header name');
      return;
    }
    const operation = o.operation ?? 'REPLACE';
    if (operation !== 'REPLACE' && operation !== 'REMOVE' && operation !== 'APPEND') {
      report(
        resource,
        `${path}.operation`,
        `must be REPLACE, REMOVE or APPEND, got ${JSON.stringify(operation)}`,
      );
      return;
    }
    const values: CompiledExpression[] = [];
    const rawValues = o.values ?? [];
    if (!Array.isArray(rawValues)) {
      report(resource, `${path}.values`, 'must be a list of expressions of type STRING');
      return;
    }
    rawValues.forEach((v: unknown, j) => {
      try {
        values.push(compileExpression(String(v), manifest, { expectedType: ValueType.STRING }));
      } catch (error) {
        if (!(error instanceof ExpressionError)) throw error;
        report(
          resource,
          `${path}.values[${j}]`,
          `${error.kind} error in ${JSON.stringify(String(v))} at ${error.message}`,
        );
      }
    });
    out.push(Object.freeze({ name, values: Object.freeze(values), operation }));
  });
  return Object.freeze(out);
}

function resolveOne<T extends { qualifiedName: string; name: string; kind: string; namespace: string }>(
  table: NameTable<T>,
  faulty: NameTable<ResourceStub>,
  reference: string,
  namespace: string,
  sort: string,
  resource: ConfigResource,
  path: string,
  report: Report,
): T | undefined {
  const found = table.resolve(reference, namespace);
  if (found === undefined) {
    // Declared, but with errors of its own, reported where it is declared.
    if (faulty.resolve(reference, namespace) !== undefined) return undefined;
    report(
      resource,
      path,
      `no ${sort} ${reference} in namespace ${namespace}; declare it, or qualify the name as name.kind.namespace`,
    );
    return undefined;
  }
  if (Array.isArray(found)) {
    report(
      resource,
      path,
      `${reference} is ambiguous: ${found.map((f) => f.qualifiedName).join(' and ')}; write name.kind to choose`,
    );
    return undefined;
  }
  return found;
}

function manifestAttributes(resource: ConfigResource, report: Report): AttributeInfo[] {
  const attributes = resource.spec.attributes;
  if (attributes === undefined || attributes === null) return [];
  if (typeof attributes !== 'object' || Array.isArray(attributes)) {
    report(resource, 'spec.attributes', 'must be a mapping of attribute names to {valueType, description}');
    return [];
  }
  const out: AttributeInfo[] = [];
  for (const [name, decl] of Object.entries(attributes as Record<string, unknown>)) {
    const raw = (decl ?? {}) as Record<string, unknown>;
    // Mixer read manifests through jsonpb, which takes the proto's own field name too (value_type).
    const key = raw.valueType === undefined && raw.value_type !== undefined ? 'value_type' : 'valueType';
    const written = raw[key];
    const valueType = typeof written === 'string' ? parseValueType(written) : undefined;
    if (valueType === undefined) {
      report(
        resource,
        `spec.attributes.${name}.${key}`,
        `must be a value type (STRING, INT64, DOUBLE, BOOL, TIMESTAMP, DURATION, IP_ADDRESS, EMAIL_ADDRESS, URI, DNS_NAME, STRING_MAP, BYTES), got ${JSON.stringify(written ?? null)}`,
      );
      continue;
    }
    out.push({
      name,
      valueType,
      ...(typeof raw.description === 'string' ? { description: raw.description } : {}),
    });
  }
  return out;
}

function readFailurePolicy(resource: ConfigResource, report: Report): FailurePolicy | undefined {
  const raw = resource.spec.failurePolicy;
  if (raw === undefined || raw === null) return undefined;
  const normalized = raw === 'FAIL_CLOSED' ? 'FAIL_CLOSE' : raw;
  if (!FAILURE_POLICIES.includes(normalized as FailurePolicy)) {
    report(resource, 'spec.failurePolicy', `must be FAIL_CLOSE or FAIL_OPEN, got ${JSON.stringify(raw)}`);
    return undefined;
  }
  return normalized as FailurePolicy;
}

const HANDLER_FIELDS = ['compiledAdapter', 'adapter', 'params', 'connection', 'failurePolicy'];
const INSTANCE_FIELDS = ['compiledTemplate', 'template', 'params', 'attributeBindings'];
const RULE_FIELDS = [
  'match',
  'actions',
  'requestHeaderOperations',
  'responseHeaderOperations',
  'sampling',
  'failurePolicy',
];
const ACTION_FIELDS = ['handler', 'instances', 'name'];

/** Reports keys of a spec that its kind does not have: a misspelt `match` must not make a rule apply everywhere. */
function checkSpecFields(
  resource: ConfigResource,
  fields: readonly string[],
  what: string,
  report: Report,
): void {
  for (const key of Object.keys(resource.spec)) {
    if (!fields.includes(key)) {
      report(resource, `spec.${key}`, `is not a field of ${what}; its fields: ${fields.join(', ')}`);
    }
  }
}

function unknownKind(kind: string, registry: AdapterRegistry): string {
  return (
    `unknown kind ${kind}: expected attributemanifest, handler, instance, rule, an adapter ` +
    `(${registry.names().join(', ')}), a template (${[...TEMPLATES.keys()].join(', ')}) or a proxy kind (${[...PROXY_KINDS].join(', ')})`
  );
}

function stringField(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function withoutKeys(
  spec: Readonly<Record<string, unknown>>,
  keys: readonly string[],
): Record<string, unknown> {
  return Object.fromEntries(Object.entries(spec).filter(([k]) => !keys.includes(k)));
}

/** JSON with object keys sorted, so equal configurations have equal keys. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

function sortErrors(errors: ConfigError[]): ConfigError[] {
  return errors
    .map((e, i) => ({ e, i }))
    .sort((a, b) =>
      a.e.file < b.e.file ? -1 : a.e.file > b.e.file ? 1 : (a.e.line ?? 0) - (b.e.line ?? 0) || a.i - b.i,
    )
    .map(({ e }) => e);
}
