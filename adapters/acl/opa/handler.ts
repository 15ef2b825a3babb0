/**
 * The opa handler: a Rego policy compiled to WebAssembly, evaluated in-process for every
 * `authorization` and `checknothing` instance.
 *
 * Building it reads the policy (policy-sources.ts), compiles the Rego with the OPA compiler
 * in a child process (compiler.ts) or loads a precompiled bundle, and makes the first
 * instance: the server serves only once that is done, so no request sees a half-loaded
 * policy. A policy that does not compile fails the build, naming the file (or
 * `policy[i]`), line and column.
 *
 * While it runs, it watches its files (`watch`, default on): a change of Rego recompiles,
 * off the event loop, and swaps the new module in at once — an evaluation in flight
 * finishes on the module it started with; a change of data documents only is applied with
 * `setData`, without compiling. A change that does not compile or read is logged with its
 * file and line, and the running policy keeps deciding.
 */
import * as path from 'node:path';
import { OK_STATUS, StatusCode, type CallContext, type CheckResult } from '../../../templates';
import type {
  AuthorizationHandler,
  AuthorizationInstance,
  CheckNothingHandler,
  CheckNothingInstance,
} from '../../../templates';
import type { AdapterEnv, Handler, TimerHandle } from '../../contract';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { compileRego, PolicyCompileError } from './compiler';
import { entrypointOf, validateOpaConfig, type OpaConfig } from './config';
import { interpretResult, REJECTED_MESSAGE, type Decision } from './decision';
import { openDecisionLog, type DecisionLog, type DecisionLogStats } from './decision-log';
import {
  EventLoopEvaluator,
  ThreadEvaluator,
  type EvaluationResult,
  type EvaluatorStats,
  type PolicyEvaluator,
} from './evaluator';
import { requireOpa } from './opa-cli';
import { attributesInput, authorizationInput } from './policy-input';
import {
  isPolicyDirEntry,
  PolicySourceError,
  readPolicySources,
  watchedPaths,
  type PolicySources,
} from './policy-sources';
import { WasmPolicy } from './wasm-policy';

/** Quiet time after a change before reloading, in milliseconds. */
export const RELOAD_DELAY_MS = 100;
/** How often the watched files are also polled for changes the watcher missed, in milliseconds. */
export const POLL_INTERVAL_MS = 1000;
/** At most one log line per this many milliseconds about decisions that failed. */
const PROBLEM_LOG_INTERVAL_MS = 10_000;

/** The policy version that decides now. */
interface ActivePolicy {
  readonly policy: WasmPolicy;
  readonly evaluator: PolicyEvaluator;
  readonly codeHash: string;
  dataHash: string;
  /** `v0`, `v1`, or `bundle`. */
  readonly regoVersion: string;
  readonly loadedAtMs: number;
}

/** Decisions made since the handler was built. */
export interface OpaDecisionCounters {
  allowed: number;
  denied: number;
  /** Denials not enforced because of dryRun. */
  dryRunDenied: number;
  /** No decision (evaluation error, timeout, undefined or malformed answer): answered as failClose says. */
  failed: number;
  timedOut: number;
}

/** What `stats()` answers, for the admin endpoint's /stats. */
export interface OpaStats {
  readonly revision: string;
  readonly regoVersion: string;
  readonly entrypoint: string;
  readonly dryRun: boolean;
  readonly decisions: Readonly<OpaDecisionCounters>;
  readonly reloads: number;
  readonly dataUpdates: number;
  readonly failedReloads: number;
  /** The last refused change, until a change loads. */
  readonly lastReloadError?: string;
  readonly evaluator: EvaluatorStats;
  readonly decisionLog?: DecisionLogStats;
}

/** The message a compile or read failure gives, with its file, line and column. */
function describeLoadError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class OpaHandler {
  private active: ActivePolicy;
  private readonly counters: OpaDecisionCounters = {
    allowed: 0,
    denied: 0,
    dryRunDenied: 0,
    failed: 0,
    timedOut: 0,
  };
  private reloads = 0;
  private dataUpdates = 0;
  private failedReloads = 0;
  private lastReloadError: string | undefined;
  /** The sources of the last refused change: the same files again are not retried (nor logged). */
  private refusedSources: string | undefined;
  private closed = false;
  private readonly watchers: FSWatcher[] = [];
  private poller: TimerHandle | undefined;
  private reloadTimer: TimerHandle | undefined;
  private reloading: Promise<void> = Promise.resolve();
  private fingerprint: string | undefined;
  private lastProblemLogMs = -Infinity;
  private suppressedProblems = 0;
  private readonly entrypoint: string;
  private readonly label: string;
  private readonly validity: { readonly validDurationMs: number; readonly validUseCount: number };

  private constructor(
    private readonly config: OpaConfig,
    private readonly env: AdapterEnv,
    private readonly baseDir: string,
    first: ActivePolicy,
    private readonly decisionLog: DecisionLog | undefined,
  ) {
    this.active = first;
    this.entrypoint = entrypointOf(config.checkMethod!);
    this.label = `opa/${env.handlerName}`;
    this.validity = { validDurationMs: config.validDuration, validUseCount: config.validUseCount };
  }

  /**
   * Reads, compiles and loads the policy, opens the decision log, and starts watching.
   * Relative paths are resolved against the folder of the configuration file that declared
   * the handler (the working directory when there is none).
   * @throws Error naming the file, line and column of a policy that does not compile, a
   *   file that cannot be read, a missing compiler (with the command that installs it), or
   *   a module that calls a built-in the runtime lacks
   */
  static async build(config: OpaConfig, env: AdapterEnv): Promise<OpaHandler> {
    const problems = validateOpaConfig(config);
    if (problems.length > 0) throw new Error(problems.map((p) => `${p.path} ${p.message}`).join('; '));
    const baseDir = env.configFile === undefined ? process.cwd() : path.dirname(path.resolve(env.configFile));
    const sources = await readPolicySources(config, baseDir);
    const first = await load(config, sources, env, Date.now());
    let decisionLog: DecisionLog | undefined;
    try {
      decisionLog =
        config.decisionLog === undefined
          ? undefined
          : await openDecisionLog(config.decisionLog, baseDir, env);
    } catch (error) {
      await first.evaluator.close();
      throw error;
    }
    const handler = new OpaHandler(config, env, baseDir, first, decisionLog);
    if (config.watch) handler.startWatching();
    return handler;
  }

  handleAuthorization(
    instance: AuthorizationInstance,
    _context: CallContext,
  ): CheckResult | Promise<CheckResult> {
    return this.decide(instance.name, authorizationInput(instance), true);
  }

  /**
   * The whole request as `input.attributes`. Such a decision is never cacheable by the
   * proxy: it may depend on an attribute's absence, which the proxy's cache cannot key on
   * for attributes it was not told about.
   */
  handleCheckNothing(
    instance: CheckNothingInstance,
    context: CallContext,
  ): CheckResult | Promise<CheckResult> {
    const input = context.attributes === undefined ? { attributes: {} } : attributesInput(context.attributes);
    return this.decide(instance.name, input, false);
  }

  /** Counters and the policy version, for the admin endpoint. */
  stats(): OpaStats {
    return {
      revision: this.active.policy.revision,
      regoVersion: this.active.regoVersion,
      entrypoint: this.entrypoint,
      dryRun: this.config.dryRun,
      decisions: { ...this.counters },
      reloads: this.reloads,
      dataUpdates: this.dataUpdates,
      failedReloads: this.failedReloads,
      ...(this.lastReloadError === undefined ? {} : { lastReloadError: this.lastReloadError }),
      evaluator: this.active.evaluator.stats(),
      ...(this.decisionLog === undefined ? {} : { decisionLog: this.decisionLog.stats() }),
    };
  }

  /** The revision (a short hash of the module) deciding now. */
  get revision(): string {
    return this.active.policy.revision;
  }

  /**
   * Reads the policy's files again now and applies what changed (recompiling Rego, or
   * setting data); resolves once done. A change that fails is logged and kept in stats;
   * the running policy stays. Calls are serialized.
   */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(() => this.reloadNow());
    return this.reloading;
  }

  /** Stops watching, lets evaluations in flight finish, flushes the decision log. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const watcher of this.watchers) watcher.close();
    this.poller?.cancel();
    this.reloadTimer?.cancel();
    await this.reloading;
    await this.active.evaluator.close();
    await this.decisionLog?.close();
  }

  private decide(
    instanceName: string,
    input: unknown,
    cacheable: boolean,
  ): CheckResult | Promise<CheckResult> {
    if (this.closed) throw new Error(`${this.label}: the handler is closed`);
    const active = this.active;
    const nowMs = this.env.now();
    const evaluated = active.evaluator.evaluate(input, this.entrypoint, nowMs);
    if (evaluated instanceof Promise) {
      return evaluated.then((r) => this.answer(active, instanceName, input, r, nowMs, cacheable));
    }
    return this.answer(active, instanceName, input, evaluated, nowMs, cacheable);
  }

  private answer(
    active: ActivePolicy,
    instanceName: string,
    input: unknown,
    evaluated: EvaluationResult,
    nowMs: number,
    cacheable: boolean,
  ): CheckResult {
    const interpreted = evaluated.ok
      ? interpretResult(evaluated.resultSet)
      : {
          ok: false as const,
          problem: evaluated.timedOut ? evaluated.error : `evaluation failed: ${evaluated.error}`,
          value: undefined,
        };
    const dryRun = this.config.dryRun;
    if (!interpreted.ok) {
      this.counters.failed++;
      if (!evaluated.ok && evaluated.timedOut) this.counters.timedOut++;
      const message = `${REJECTED_MESSAGE}: ${interpreted.problem}`;
      const code = this.config.failClose ? StatusCode.PERMISSION_DENIED : StatusCode.OK;
      this.noteProblem(
        `${instanceName}: ${interpreted.problem}; ${this.config.failClose ? 'denied (failClose)' : 'allowed (failClose is false)'}`,
      );
      this.decisionLog?.write({
        timeMs: nowMs,
        instance: instanceName,
        revision: active.policy.revision,
        input,
        result: interpreted.value,
        decision: 'error',
        code: dryRun ? StatusCode.OK : code,
        reason: code === StatusCode.OK ? '' : message,
        error: interpreted.problem,
        dryRun,
        evalMicros: evaluated.micros,
      });
      // No decision is never cached: the next request asks again.
      if (code === StatusCode.OK || dryRun)
        return { status: OK_STATUS, validDurationMs: 0, validUseCount: 0 };
      return { status: { code, message }, validDurationMs: 0, validUseCount: 0 };
    }
    const decision: Decision = interpreted.decision;
    if (decision.allow) this.counters.allowed++;
    else if (dryRun) this.counters.dryRunDenied++;
    else this.counters.denied++;
    this.decisionLog?.write({
      timeMs: nowMs,
      instance: instanceName,
      revision: active.policy.revision,
      input,
      result: interpreted.value,
      decision: decision.allow ? 'allow' : 'deny',
      code: decision.code,
      reason: decision.reason,
      dryRun,
      evalMicros: evaluated.micros,
    });
    const validity = cacheable ? this.validity : { validDurationMs: 0, validUseCount: 0 };
    // A dry run changes nothing: no denial and no header operations reach the proxy.
    if (dryRun) return { status: OK_STATUS, ...validity };
    const headers = {
      ...(decision.requestHeaderOperations.length > 0
        ? { requestHeaderOperations: decision.requestHeaderOperations }
        : {}),
      ...(decision.responseHeaderOperations.length > 0
        ? { responseHeaderOperations: decision.responseHeaderOperations }
        : {}),
    };
    if (decision.allow) return { status: OK_STATUS, ...validity, ...headers };
    return { status: { code: decision.code, message: decision.reason }, ...validity, ...headers };
  }

  /** Logs a failed decision, at most once per PROBLEM_LOG_INTERVAL_MS with a count of the others. */
  private noteProblem(message: string): void {
    const now = this.env.now();
    if (now - this.lastProblemLogMs < PROBLEM_LOG_INTERVAL_MS) {
      this.suppressedProblems++;
      return;
    }
    const suppressed = this.suppressedProblems;
    this.suppressedProblems = 0;
    this.lastProblemLogMs = now;
    this.env.logger.warn(
      `${this.label}: no decision for ${message}` +
        (suppressed > 0 ? ` (and ${suppressed} more failed decisions not logged since the last line)` : ''),
    );
  }

  private async reloadNow(): Promise<void> {
    if (this.closed) return;
    let sources: PolicySources;
    try {
      sources = await readPolicySources(this.config, this.baseDir);
    } catch (error) {
      this.refuse(error);
      return;
    }
    const active = this.active;
    const key = `${sources.codeHash}/${sources.dataHash}`;
    if (key === this.refusedSources) return;
    if (sources.codeHash !== active.codeHash) {
      let next: ActivePolicy;
      try {
        next = await load(this.config, sources, this.env, this.env.now());
      } catch (error) {
        this.refuse(error);
        this.refusedSources = key;
        return;
      }
      if (this.closed) {
        await next.evaluator.close();
        return;
      }
      this.active = next;
      this.reloads++;
      this.lastReloadError = undefined;
      this.refusedSources = undefined;
      this.env.logger.info(
        `${this.label}: policy reloaded: revision ${next.policy.revision} replaces ${active.policy.revision}`,
      );
      await active.evaluator.close();
    } else if (sources.dataHash !== active.dataHash) {
      active.evaluator.setData(sources.data);
      active.dataHash = sources.dataHash;
      this.dataUpdates++;
      this.lastReloadError = undefined;
      this.refusedSources = undefined;
      this.env.logger.info(`${this.label}: data updated; revision ${active.policy.revision} keeps deciding`);
    }
  }

  private refuse(error: unknown): void {
    this.failedReloads++;
    this.lastReloadError = describeLoadError(error);
    this.env.logger.error(
      `${this.label}: policy change refused, revision ${this.active.policy.revision} keeps deciding: ${this.lastReloadError}`,
    );
  }

  /** fs.watch on each path for prompt reloads, and a poll of their files' sizes and times for what it misses. */
  private startWatching(): void {
    const paths = watchedPaths(this.config, this.baseDir);
    if (paths.length === 0) return;
    const schedule = (): void => {
      if (this.closed) return;
      this.reloadTimer?.cancel();
      this.reloadTimer = this.env.schedule(() => {
        void this.reload().then(async () => {
          this.fingerprint = await fingerprintOf(paths);
        });
      }, RELOAD_DELAY_MS);
    };
    for (const p of paths) {
      try {
        const watcher = watch(p, { recursive: true }, () => schedule());
        watcher.on('error', () => undefined); // a vanished file: the poll takes over
        watcher.unref();
        this.watchers.push(watcher);
      } catch {
        // A path that does not exist yet, or cannot be watched: the poll sees it change.
      }
    }
    void fingerprintOf(paths).then((f) => {
      this.fingerprint = f;
    });
    this.poller = this.env.every(() => {
      void fingerprintOf(paths).then((f) => {
        if (this.fingerprint !== undefined && f !== this.fingerprint) schedule();
        this.fingerprint = f;
      });
    }, POLL_INTERVAL_MS);
  }
}

/** Loads a policy version: compile (or take the bundle's module), make the evaluator, set the data. */
async function load(
  config: OpaConfig,
  sources: PolicySources,
  env: AdapterEnv,
  nowMs: number,
): Promise<ActivePolicy> {
  const entrypoint = entrypointOf(config.checkMethod!);
  let wasm: Buffer;
  let regoVersion: string;
  if (sources.wasm !== undefined) {
    wasm = sources.wasm;
    regoVersion = 'bundle';
  } else {
    const opa = requireOpa(
      config.opaPath,
      'compiling the Rego policy (a precompiled bundle needs no compiler: see params.bundle)',
    );
    const compiled = await compileRego({
      opa,
      modules: sources.modules,
      entrypoints: [entrypoint],
      regoVersion: config.regoVersion,
    });
    wasm = compiled.wasm;
    regoVersion = compiled.regoVersion;
  }
  const policy = await WasmPolicy.load(wasm);
  if (policy.entrypoints[entrypoint] === undefined) {
    const known = Object.keys(policy.entrypoints);
    throw new Error(
      `checkMethod ${config.checkMethod} is not an entrypoint of the compiled policy; it has ` +
        `${known.length === 0 ? 'none' : known.map((e) => `data.${e.replaceAll('/', '.')}`).join(', ')} ` +
        '(build the bundle with opa build -t wasm -e <package>/<rule>)',
    );
  }
  const evaluator: PolicyEvaluator =
    config.evaluationThreads > 0
      ? await ThreadEvaluator.create(policy, {
          threads: config.evaluationThreads,
          timeoutMs: config.evaluationTimeout,
          onThreadError: (message) => env.logger.error(`opa/${env.handlerName}: ${message}`),
        })
      : new EventLoopEvaluator(policy);
  evaluator.setData(sources.data);
  return {
    policy,
    evaluator,
    codeHash: sources.codeHash,
    dataHash: sources.dataHash,
    regoVersion,
    loadedAtMs: nowMs,
  };
}

/** Names, sizes and modification times of the files below `paths`, as one string. */
async function fingerprintOf(paths: readonly string[]): Promise<string> {
  const parts: string[] = [];
  const visit = async (p: string, depth: number): Promise<void> => {
    let st;
    try {
      st = await stat(p);
    } catch {
      parts.push(`${p}:missing`);
      return;
    }
    if (!st.isDirectory()) {
      parts.push(`${p}:${st.size}:${st.mtimeMs}:${st.ino}`);
      return;
    }
    if (depth > 32) return;
    const entries = await readdir(p).catch(() => [] as string[]);
    for (const entry of entries.sort())
      if (isPolicyDirEntry(entry)) await visit(path.join(p, entry), depth + 1);
  };
  for (const p of paths) await visit(p, 0);
  return parts.join('\n');
}

export { PolicyCompileError, PolicySourceError };

/** The handler for a validated configuration, checked against the templates' handler interfaces. */
export async function createOpaHandler(config: OpaConfig, env: AdapterEnv) {
  return (await OpaHandler.build(config, env)) satisfies AuthorizationHandler & CheckNothingHandler & Handler;
}
