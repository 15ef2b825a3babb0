/**
 * The dispatcher: routes one Check or Report through the rules of the running
 * configuration to its handlers, and combines what they answer, as Mixer did:
 *
 * - Rules: those of the default namespace apply to all traffic; those of another
 *   namespace to the traffic of that namespace — `destination.namespace`, or
 *   `source.namespace` when `context.reporter.kind` is `outbound`. A rule whose match
 *   fails to evaluate (an absent attribute) does not apply.
 * - Check: the first non-OK status in rule order, with every failing handler's message
 *   joined (`handler:message, handler:message`); the smallest valid duration and use
 *   count; the attributes the decision read (ReferencedAttributes) — through instance
 *   expressions, and through `CallContext.attributes` for handlers that read the request
 *   whole; the rules' header operations, then those handlers returned, in rule order.
 * - Quotas, only when the check passed: a quota goes to the quota instances whose short
 *   name equals it, ignoring case; a quota no instance serves is granted in full.
 * - Report: every matching report instance, batched per handler.
 * - A handler that throws or misses its deadline faults: FAIL_CLOSE (the default) answers
 *   UNAVAILABLE (DEADLINE_EXCEEDED for a timeout; RESOURCE_EXHAUSTED when it threw
 *   HandlerFullError, i.e. it is full and kept nothing), FAIL_OPEN lets the call through uncached.
 */
import { ReferenceRecordingBag, ReferencedAttributes, type Bag, type QuotaRequest } from '../attributes';
import { HandlerFullError, type AdapterLogger, type Handler } from '../adapters';
import { EvaluationError } from '../expressions';
import {
  OK_STATUS,
  StatusCode,
  type CallContext,
  type CheckResult,
  type HeaderOperation,
  type QuotaArgs,
  type QuotaResult,
  type Status,
} from '../templates';
import { InstanceBuildError, type InstanceBuilder } from './instance-builder';
import { createRepeatEvaluator, type Evaluator } from './repeat-evaluator';
import type {
  FailurePolicy,
  HandlerConfig,
  HeaderOperationConfig,
  RuleConfig,
  RuntimeConfig,
} from './runtime-config';

export interface DispatcherOptions {
  /** How long a handler may take for one call, in milliseconds. Default 1000. */
  readonly handlerTimeoutMs?: number;
  /** Validity of a Check no handler limited, in milliseconds. Default 60000 (Mixer's). */
  readonly defaultValidDurationMs?: number;
  /** Use count of a Check no handler limited. Default 10000 (Mixer's). */
  readonly defaultValidUseCount?: number;
  readonly logger: AdapterLogger;
}

export type { HeaderOperation } from '../templates';

/** The answer for one quota. */
export interface QuotaOutcome {
  readonly status: Status;
  readonly grantedAmount: bigint;
  readonly validDurationMs: number;
}

/** What a Check decided. */
export interface CheckOutcome {
  readonly status: Status;
  readonly validDurationMs: number;
  readonly validUseCount: number;
  /** The attributes (and map keys) the decision read, present or absent. */
  readonly references: ReferencedAttributes;
  readonly requestHeaderOperations: readonly HeaderOperation[];
  readonly responseHeaderOperations: readonly HeaderOperation[];
  /** One outcome per quota asked for, when the check passed; empty otherwise. */
  readonly quotas: ReadonlyMap<string, QuotaOutcome>;
}

/** What a Report did: how many instances reached handlers, and the faults. */
export interface ReportOutcome {
  readonly status: Status;
  readonly dispatched: number;
}

/** Counters, for the admin endpoint and tests. */
export interface DispatcherStats {
  checks: number;
  reports: number;
  handlerFaults: number;
  failedOpen: number;
  instanceBuildFailures: number;
}

const DEFAULT_TIMEOUT_MS = 1000;
const DEFAULT_VALID_DURATION_MS = 60_000;
const DEFAULT_VALID_USE_COUNT = 10_000;

/** A handler's method for a template, as the dispatcher calls it: instance(s), args when any, context. */
type HandlerMethod = (first: unknown, ...rest: unknown[]) => unknown;

/** A call's context; its AbortSignal exists only if the handler asks for it. */
class CallDeadline implements CallContext {
  private controller: AbortController | undefined;

  constructor(
    readonly attributes: Bag | undefined,
    readonly deduplicationId?: string,
  ) {}

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }

  expire(): void {
    this.controller?.abort();
  }
}

function isThenable<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** A handler call that did not answer. */
class HandlerFault {
  constructor(
    readonly handler: HandlerConfig,
    readonly status: Status,
  ) {}
}

/**
 * A report instance of a rule's action, resolved when the dispatcher is made: its builder,
 * the handler method it goes to, and the batch (slot) it joins — one per handler and
 * template, shared by every rule that sends there.
 */
interface ReportTarget {
  readonly handler: HandlerConfig;
  readonly builder: InstanceBuilder;
  readonly method: string;
  /** `handler/template`: the batch's name, in the deduplication id its call gets. */
  readonly key: string;
  readonly slot: number;
}

/** A rule with at least one report instance, and those instances. */
interface ReportRule {
  readonly rule: RuleConfig;
  /** The rule's match, evaluated again only when what it reads changed; undefined: every record. */
  readonly match: Evaluator | undefined;
  readonly targets: readonly ReportTarget[];
}

/** The report rules of the configuration, by the namespace whose traffic they see. */
interface ReportRouting {
  /** The default namespace's report rules: all traffic's. */
  readonly defaultRules: readonly ReportRule[];
  /** For each other namespace with report rules: the default namespace's, then its own. */
  readonly byNamespace: ReadonlyMap<string, readonly ReportRule[]>;
  /** How many batches (slots) a Report may have. */
  readonly slots: number;
}

function reportRoutingOf(config: RuntimeConfig): ReportRouting {
  const slots = new Map<string, number>();
  const reportRules = (rules: readonly RuleConfig[]): ReportRule[] => {
    const out: ReportRule[] = [];
    for (const rule of rules) {
      const targets: ReportTarget[] = [];
      for (const action of rule.actions) {
        for (const instance of action.instances) {
          if (instance.template.variety !== 'report') continue;
          const key = `${action.handler.qualifiedName}/${instance.template.name}`;
          let slot = slots.get(key);
          if (slot === undefined) slots.set(key, (slot = slots.size));
          targets.push({
            handler: action.handler,
            builder: instance.builder,
            method: instance.template.handlerMethod,
            key,
            slot,
          });
        }
      }
      if (targets.length > 0) {
        const match = rule.match === undefined ? undefined : createRepeatEvaluator(rule.match);
        out.push({ rule, match, targets });
      }
    }
    return out;
  };
  const defaultRules = reportRules(config.rulesByNamespace.get(config.defaultNamespace) ?? []);
  const byNamespace = new Map<string, ReportRule[]>();
  for (const [namespace, rules] of config.rulesByNamespace) {
    if (namespace === config.defaultNamespace) continue;
    const own = reportRules(rules);
    if (own.length > 0) byNamespace.set(namespace, [...defaultRules, ...own]);
  }
  return { defaultRules, byNamespace, slots: slots.size };
}

/**
 * One Report being gathered: records go in one at a time ({@link add}), each routed at once
 * to the report instances of the rules it matches, which are kept, batched per handler and
 * template; {@link finish} then calls each handler once with its batch. Records are not kept:
 * the bag given to {@link add} may change afterwards (a decoder applying the next delta).
 * Get one from {@link Dispatcher.startReport}.
 */
export class ReportCollector {
  /** Instances per slot, undefined until the first one. */
  private readonly batches: (unknown[] | undefined)[];
  /** Per slot: the rule of its first instance, whose failure policy the call follows. */
  private readonly rules: (RuleConfig | undefined)[];
  private readonly targets: (ReportTarget | undefined)[];
  /** Slots in the order of their first instance: the order of the handler calls. */
  private readonly order: number[] = [];
  /**
   * Instances that could not be built, counted at {@link finish}: a Report refused part way
   * (a malformed record further on) is never finished, and its records count for nothing.
   */
  private notBuilt = 0;
  private firstNotBuilt: InstanceBuildError | undefined;

  constructor(
    private readonly dispatcher: Dispatcher,
    slots: number,
  ) {
    this.batches = new Array<unknown[] | undefined>(slots);
    this.rules = new Array<RuleConfig | undefined>(slots);
    this.targets = new Array<ReportTarget | undefined>(slots);
  }

  /** Routes one record: builds the instances of every matching report rule for it. */
  add(bag: Bag): void {
    const rules = this.dispatcher.reportRulesFor(bag);
    for (let r = 0; r < rules.length; r++) {
      const { rule, match, targets } = rules[r]!;
      if (match !== undefined && match(bag) !== true) continue;
      for (let i = 0; i < targets.length; i++) {
        const target = targets[i]!;
        const built = target.builder.build(bag);
        if (built instanceof InstanceBuildError) {
          if (this.notBuilt++ === 0) this.firstNotBuilt = built;
          continue;
        }
        let batch = this.batches[target.slot];
        if (batch === undefined) {
          batch = this.batches[target.slot] = [];
          this.rules[target.slot] = rule;
          this.targets[target.slot] = target;
          this.order.push(target.slot);
        }
        batch.push(built);
      }
    }
  }

  /**
   * Calls every handler with its batch, concurrently, each under the deadline. The outcome
   * itself when every handler answered at once, else a native Promise of it.
   * @param reportId the client's id of this Report ('' when none): see {@link Dispatcher.report}
   */
  finish(reportId = ''): ReportOutcome | Promise<ReportOutcome> {
    this.dispatcher.stats.reports++;
    if (this.notBuilt > 0) this.dispatcher.instancesNotBuilt(this.notBuilt, this.firstNotBuilt!);
    const order = this.order;
    if (order.length === 0) return NOTHING_DISPATCHED;
    const answers: unknown[] = [];
    let pending = false;
    for (const slot of order) {
      const target = this.targets[slot]!;
      const answer = this.dispatcher.callReportHandler(
        this.rules[slot]!,
        target,
        this.batches[slot]!,
        reportId === '' ? undefined : `${reportId}/${target.key}`,
      );
      if (isThenable(answer)) pending = true;
      answers.push(answer);
    }
    return pending ? Promise.all(answers).then((results) => this.outcome(results)) : this.outcome(answers);
  }

  private outcome(results: readonly unknown[]): ReportOutcome {
    let dispatched = 0;
    let faults: HandlerFault[] | undefined;
    for (let i = 0; i < results.length; i++) {
      const result = results[i];
      if (result instanceof HandlerFault) (faults ??= []).push(result);
      else dispatched += this.batches[this.order[i]!]!.length;
    }
    if (faults === undefined) return { status: OK_STATUS, dispatched };
    // A report handler that failed may not have kept its records: the client must send them
    // again. RESOURCE_EXHAUSTED when every fault was a full handler (HandlerFullError), so the
    // proxy backs off rather than treating the server as down.
    const status = {
      code: faults.every((f) => f.status.code === StatusCode.RESOURCE_EXHAUSTED)
        ? StatusCode.RESOURCE_EXHAUSTED
        : StatusCode.UNAVAILABLE,
      message: faults.map((f) => `${f.handler.qualifiedName}:${f.status.message}`).join(', '),
    };
    return { status, dispatched };
  }
}

const NOTHING_DISPATCHED: ReportOutcome = Object.freeze({ status: OK_STATUS, dispatched: 0 });

export class Dispatcher {
  readonly stats: DispatcherStats = {
    checks: 0,
    reports: 0,
    handlerFaults: 0,
    failedOpen: 0,
    instanceBuildFailures: 0,
  };
  private readonly timeoutMs: number;
  private readonly defaultValidDurationMs: number;
  private readonly defaultValidUseCount: number;
  private readonly logger: AdapterLogger;
  private readonly defaultRules: readonly RuleConfig[];
  private readonly onlyDefaultRules: boolean;
  private readonly reportRouting: ReportRouting;
  /**
   * Whether any rule has a report instance. When none has, a Report's records go nowhere:
   * the Mixer service then only checks the request (a malformed one is still refused).
   */
  readonly hasReportRules: boolean;

  constructor(
    readonly config: RuntimeConfig,
    private readonly handlers: ReadonlyMap<string, Handler>,
    options: DispatcherOptions,
  ) {
    this.timeoutMs = options.handlerTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.defaultValidDurationMs = options.defaultValidDurationMs ?? DEFAULT_VALID_DURATION_MS;
    this.defaultValidUseCount = options.defaultValidUseCount ?? DEFAULT_VALID_USE_COUNT;
    this.logger = options.logger;
    this.defaultRules = config.rulesByNamespace.get(config.defaultNamespace) ?? [];
    this.onlyDefaultRules = [...config.rulesByNamespace.keys()].every((ns) => ns === config.defaultNamespace);
    this.reportRouting = reportRoutingOf(config);
    this.hasReportRules =
      this.reportRouting.defaultRules.length > 0 || this.reportRouting.byNamespace.size > 0;
  }

  /** The rules that apply to a request: the default namespace's, then its own namespace's. */
  private rulesFor(bag: Bag): readonly RuleConfig[] {
    // With rules in the default namespace only, the request's namespace does not matter: not
    // reading it keeps it out of the referenced attributes, so proxies cache more widely.
    if (this.onlyDefaultRules) return this.defaultRules;
    const outbound = bag.get('context.reporter.kind') === 'outbound';
    const namespace = bag.get(outbound ? 'source.namespace' : 'destination.namespace');
    if (typeof namespace !== 'string' || namespace === this.config.defaultNamespace) return this.defaultRules;
    const own = this.config.rulesByNamespace.get(namespace);
    return own === undefined ? this.defaultRules : [...this.defaultRules, ...own];
  }

  /**
   * The report rules that apply to a record, chosen as {@link rulesFor} chooses. For
   * {@link ReportCollector}.
   */
  reportRulesFor(bag: Bag): readonly ReportRule[] {
    const routing = this.reportRouting;
    if (this.onlyDefaultRules || routing.byNamespace.size === 0) return routing.defaultRules;
    const outbound = bag.get('context.reporter.kind') === 'outbound';
    const namespace = bag.get(outbound ? 'source.namespace' : 'destination.namespace');
    if (typeof namespace !== 'string') return routing.defaultRules;
    return routing.byNamespace.get(namespace) ?? routing.defaultRules;
  }

  /** The rules whose match holds for the bag. */
  private matching(bag: Bag): RuleConfig[] {
    const out: RuleConfig[] = [];
    for (const rule of this.rulesFor(bag)) {
      if (rule.match === undefined || rule.match.tryEvaluate(bag) === true) out.push(rule);
    }
    return out;
  }

  /**
   * One Check: the check instances of the matching rules, then, when they all pass, the quotas.
   *
   * Returns the outcome itself when every handler answered synchronously (lists, in-memory
   * quotas: the common case), so that the caller completes the call without a promise or a
   * microtask; a native Promise (test with `instanceof Promise`) when any handler answered
   * with one: its deadline, the failure policies and the combination are the same either way.
   * `await` takes both.
   *
   * @throws only on a bug: handler faults and instances that fail to build are outcomes
   */
  check(
    attributes: Bag,
    quotas: ReadonlyMap<string, QuotaRequest>,
    deduplicationId: string,
  ): CheckOutcome | Promise<CheckOutcome> {
    this.stats.checks++;
    const bag = new ReferenceRecordingBag(attributes);
    const rules = this.matching(bag);

    // Check instances, all handlers at once, each under the deadline.
    const names: string[] = [];
    const answers: Array<CheckResult | HandlerFault | Promise<CheckResult | HandlerFault>> = [];
    let pending = false;
    for (const rule of rules) {
      for (const action of rule.actions) {
        for (const instance of action.instances) {
          if (instance.template.variety !== 'check') continue;
          const built = instance.builder.build(bag);
          const handler = action.handler;
          names.push(handler.qualifiedName);
          if (built instanceof InstanceBuildError) {
            this.stats.instanceBuildFailures++;
            answers.push(this.fault(rule, handler, StatusCode.INTERNAL, built.message));
            continue;
          }
          const answer = this.call<CheckResult>(
            rule,
            handler,
            instance.template.handlerMethod,
            built,
            undefined,
            bag,
          );
          if (isThenable(answer)) pending = true;
          answers.push(answer);
        }
      }
    }
    if (pending) {
      return Promise.all(answers).then((results) =>
        this.decide(rules, bag, names, results, quotas, deduplicationId),
      );
    }
    return this.decide(
      rules,
      bag,
      names,
      answers as Array<CheckResult | HandlerFault>,
      quotas,
      deduplicationId,
    );
  }

  /** The rest of a Check once its check instances answered: combine, header operations, quotas. */
  private decide(
    rules: readonly RuleConfig[],
    bag: ReferenceRecordingBag,
    names: readonly string[],
    results: ReadonlyArray<CheckResult | HandlerFault>,
    quotas: ReadonlyMap<string, QuotaRequest>,
    deduplicationId: string,
  ): CheckOutcome | Promise<CheckOutcome> {
    let status: Status = OK_STATUS;
    let failures: string[] | undefined;
    let validDurationMs = this.defaultValidDurationMs;
    let validUseCount = this.defaultValidUseCount;
    // Operations handlers asked for, after the rules' own (Mixer's adapters could return a RouteDirective).
    let handlerRequestOps: HeaderOperation[] | undefined;
    let handlerResponseOps: HeaderOperation[] | undefined;
    for (let i = 0; i < results.length; i++) {
      const handlerName = names[i]!;
      const result = results[i]!;
      const r = result instanceof HandlerFault ? this.faultResult(result) : result;
      if (r.status.code !== StatusCode.OK) {
        if (status.code === StatusCode.OK) status = r.status;
        (failures ??= []).push(`${handlerName}:${r.status.message}`);
      }
      validDurationMs = Math.min(validDurationMs, r.validDurationMs);
      validUseCount = Math.min(validUseCount, r.validUseCount);
      if (r.requestHeaderOperations !== undefined && r.requestHeaderOperations.length > 0)
        (handlerRequestOps ??= []).push(...r.requestHeaderOperations);
      if (r.responseHeaderOperations !== undefined && r.responseHeaderOperations.length > 0)
        (handlerResponseOps ??= []).push(...r.responseHeaderOperations);
    }
    if (failures !== undefined) status = { code: status.code, message: failures.join(', ') };

    const requestHeaderOperations = headerOperations(rules, bag, 'request');
    const responseHeaderOperations = headerOperations(rules, bag, 'response');
    if (handlerRequestOps !== undefined) requestHeaderOperations.push(...handlerRequestOps);
    if (handlerResponseOps !== undefined) responseHeaderOperations.push(...handlerResponseOps);
    const outcome: { -readonly [K in keyof CheckOutcome]: CheckOutcome[K] } = {
      status,
      validDurationMs,
      validUseCount,
      references: bag.references,
      requestHeaderOperations,
      responseHeaderOperations,
      quotas: new Map<string, QuotaOutcome>(),
    };
    if (status.code !== StatusCode.OK || quotas.size === 0) return outcome;
    const allocated = this.allocate(rules, bag, quotas, deduplicationId);
    if (!isThenable(allocated)) {
      outcome.quotas = allocated;
      return outcome;
    }
    return allocated.then((quotaOutcomes) => {
      outcome.quotas = quotaOutcomes;
      return outcome;
    });
  }

  /**
   * The quota outcomes of a passed Check, in the order the quotas were asked for; a promise
   * only when some quota handler answered with one.
   */
  private allocate(
    rules: readonly RuleConfig[],
    bag: Bag,
    quotas: ReadonlyMap<string, QuotaRequest>,
    deduplicationId: string,
  ): ReadonlyMap<string, QuotaOutcome> | Promise<ReadonlyMap<string, QuotaOutcome>> {
    const names: string[] = [];
    const answers: Array<QuotaOutcome | Promise<QuotaOutcome>> = [];
    let pending = false;
    for (const [quotaName, request] of quotas) {
      const wanted = quotaName.toLowerCase();
      const calls: Array<QuotaOutcome | Promise<QuotaOutcome>> = [];
      let callsPending = false;
      for (const rule of rules) {
        for (const action of rule.actions) {
          for (const instance of action.instances) {
            if (instance.template.variety !== 'quota' || instance.name.toLowerCase() !== wanted) continue;
            const call = this.allocateOne(
              rule,
              action.handler,
              instance.builder,
              bag,
              quotaName,
              request,
              deduplicationId,
            );
            if (isThenable(call)) callsPending = true;
            calls.push(call);
          }
        }
      }
      names.push(quotaName);
      if (calls.length === 0) {
        answers.push({
          status: OK_STATUS,
          grantedAmount: request.amount,
          validDurationMs: this.defaultValidDurationMs,
        });
      } else if (callsPending) {
        pending = true;
        answers.push(Promise.all(calls).then(smallestGrant));
      } else {
        answers.push(smallestGrant(calls as QuotaOutcome[]));
      }
    }
    if (pending) return Promise.all(answers).then((outcomes) => quotaMap(names, outcomes));
    return quotaMap(names, answers as QuotaOutcome[]);
  }

  private allocateOne(
    rule: RuleConfig,
    handler: HandlerConfig,
    builder: { build(bag: Bag): unknown },
    bag: Bag,
    quotaName: string,
    request: QuotaRequest,
    deduplicationId: string,
  ): QuotaOutcome | Promise<QuotaOutcome> {
    const built = builder.build(bag);
    if (built instanceof InstanceBuildError) {
      this.stats.instanceBuildFailures++;
      return this.quotaFault(this.fault(rule, handler, StatusCode.INTERNAL, built.message), request);
    }
    const args = {
      // Per quota, as Mixer made it; a request without an id stays without one (never deduplicated).
      deduplicationId: deduplicationId === '' ? '' : deduplicationId + quotaName,
      amount: Number(request.amount),
      bestEffort: request.bestEffort,
    };
    const answer = this.call<QuotaResult>(rule, handler, 'handleQuota', built, args);
    return isThenable(answer)
      ? answer.then((result) => this.quotaOutcome(result, request))
      : this.quotaOutcome(answer, request);
  }

  private quotaOutcome(result: QuotaResult | HandlerFault, request: QuotaRequest): QuotaOutcome {
    if (result instanceof HandlerFault) return this.quotaFault(result, request);
    return {
      status: result.status,
      grantedAmount: BigInt(result.grantedAmount),
      validDurationMs: result.validDurationMs,
    };
  }

  /**
   * Starts a Report: give its records to the collector one by one, then call its `finish`
   * (which counts the Report).
   */
  startReport(): ReportCollector {
    return new ReportCollector(this, this.reportRouting.slots);
  }

  /**
   * One Report of complete records: every matching report instance, batched per handler
   * and template, each handler called once.
   * @param reportId the client's id of this Report, the same on its resends ('' when none):
   *   each handler call gets `<reportId>/<handler>/<template>` as its deduplicationId.
   */
  async report(bags: readonly Bag[], reportId = ''): Promise<ReportOutcome> {
    const collector = this.startReport();
    for (const bag of bags) collector.add(bag);
    return collector.finish(reportId);
  }

  /**
   * For {@link ReportCollector}: counts the `count` instances of one Report that could not be
   * built, and logs one line for them (one per record would flood the log when a rule reads
   * an attribute no record has).
   */
  instancesNotBuilt(count: number, first: InstanceBuildError): void {
    this.stats.instanceBuildFailures += count;
    this.logger.warn(
      count === 1
        ? `report: ${first.message}`
        : `report: ${count} instances not built; the first: ${first.message}`,
    );
  }

  /** For {@link ReportCollector}: one handler call with a batch of instances. */
  callReportHandler(
    rule: RuleConfig,
    target: ReportTarget,
    instances: unknown[],
    deduplicationId: string | undefined,
  ): unknown {
    return this.call(rule, target.handler, target.method, instances, undefined, undefined, deduplicationId);
  }

  /**
   * Calls `method` of a handler under the deadline, as `(instance, context)` or, for quotas,
   * `(instance, args, context)`; a throw or a timeout becomes a HandlerFault. The method is
   * called by name, not through a closure: no allocation per call for the usual answer.
   * `attributes` (Check calls only) is the recording bag the handler may read;
   * `deduplicationId` (Report calls) the call's stable id.
   */
  private call<R>(
    rule: RuleConfig,
    config: HandlerConfig,
    method: string,
    instance: unknown,
    args?: QuotaArgs,
    attributes?: Bag,
    deduplicationId?: string,
  ): R | HandlerFault | Promise<R | HandlerFault> {
    const handler = this.handlers.get(config.qualifiedName);
    if (handler === undefined) return this.fault(rule, config, StatusCode.INTERNAL, 'handler is not built');
    const context = new CallDeadline(attributes, deduplicationId);
    let answer: R | Promise<R>;
    try {
      const target = handler as unknown as Record<string, HandlerMethod>;
      answer = (
        args === undefined ? target[method]!(instance, context) : target[method]!(instance, args, context)
      ) as R | Promise<R>;
    } catch (error) {
      return this.thrown(rule, config, error);
    }
    // Most handlers answer at once (lists, in-memory quotas): no timer for them.
    if (!isThenable(answer)) return answer;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<HandlerFault>((resolve) => {
      timer = setTimeout(() => {
        context.expire();
        resolve(
          this.fault(rule, config, StatusCode.DEADLINE_EXCEEDED, `no answer within ${this.timeoutMs}ms`),
        );
      }, this.timeoutMs);
    });
    return Promise.race([answer, deadline]).then(
      (value) => {
        clearTimeout(timer);
        return value;
      },
      (error: unknown) => {
        clearTimeout(timer);
        return this.thrown(rule, config, error);
      },
    );
  }

  private thrown(rule: RuleConfig, config: HandlerConfig, error: unknown): HandlerFault {
    const reason = error instanceof Error ? error.message : String(error);
    // A full handler kept nothing and asks for the records later: not a failure of the handler.
    const code = error instanceof HandlerFullError ? StatusCode.RESOURCE_EXHAUSTED : StatusCode.UNAVAILABLE;
    return this.fault(rule, config, code, `handler error: ${reason}`);
  }

  private fault(rule: RuleConfig, handler: HandlerConfig, code: number, message: string): HandlerFault {
    this.stats.handlerFaults++;
    const policy: FailurePolicy = rule.failurePolicy ?? handler.failurePolicy ?? 'FAIL_CLOSE';
    if (policy === 'FAIL_OPEN') {
      this.stats.failedOpen++;
      return new HandlerFault(handler, OK_STATUS);
    }
    return new HandlerFault(handler, { code, message });
  }

  /** A faulted check: its status (OK when failing open), never cached. */
  private faultResult(fault: HandlerFault): CheckResult {
    return { status: fault.status, validDurationMs: 0, validUseCount: 0 };
  }

  private quotaFault(fault: HandlerFault, request: QuotaRequest): QuotaOutcome {
    return fault.status.code === StatusCode.OK
      ? { status: OK_STATUS, grantedAmount: request.amount, validDurationMs: 0 }
      : { status: fault.status, grantedAmount: 0n, validDurationMs: 0 };
  }
}

/** Several handlers for one quota: the smallest grant holds, and a denial over any grant. */
function smallestGrant(all: readonly QuotaOutcome[]): QuotaOutcome {
  let held = all[0]!;
  for (let i = 1; i < all.length; i++) {
    const next = all[i]!;
    if (next.grantedAmount < held.grantedAmount || next.status.code !== StatusCode.OK) held = next;
  }
  return held;
}

function quotaMap(names: readonly string[], outcomes: readonly QuotaOutcome[]): Map<string, QuotaOutcome> {
  const map = new Map<string, QuotaOutcome>();
  for (let i = 0; i < names.length; i++) map.set(names[i]!, outcomes[i]!);
  return map;
}

function headerOperations(
  rules: readonly RuleConfig[],
  bag: Bag,
  which: 'request' | 'response',
): HeaderOperation[] {
  const out: HeaderOperation[] = [];
  for (const rule of rules) {
    const ops: readonly HeaderOperationConfig[] =
      which === 'request' ? rule.requestHeaderOperations : rule.responseHeaderOperations;
    for (const op of ops) {
      if (op.operation === 'REMOVE') {
        out.push({ name: op.name, value: '', operation: 'REMOVE' });
        continue;
      }
      op.values.forEach((expression, i) => {
        const value = expression.tryEvaluate(bag);
        if (value instanceof EvaluationError) return;
        out.push({
          name: op.name,
          value: value as string,
          operation: i > 0 && op.operation === 'REPLACE' ? 'APPEND' : op.operation,
        });
      });
    }
  }
  return out;
}
