/**
 * The proxy's policy client (issue 5): a {@link TrafficHook} that asks the policy server
 * before each request (Check, through the exact decision cache) and tells it after
 * (Report, batched). Settings come from the proxy configuration's `policy` section:
 *
 * ```yaml
 * policy:
 *   server: 127.0.0.1:9091     # the policy server (gRPC, h2c); no server: no checks, no reports
 *   checkTimeoutMs: 1000       # deadline of a Check
 *   failPolicy: FAIL_CLOSE     # when the server is unreachable or slow: FAIL_CLOSE (503) or FAIL_OPEN
 *   cacheEntries: 10000        # decision cache bound
 *   reportBatchEntries: 100    # a Report is sent when this many requests completed…
 *   reportBatchDelayMs: 1000   # …or this long after the first of them
 *   reportBufferEntries: 10000 # kept while the server does not take Reports; beyond, dropped and counted
 * ```
 *
 * Denials map to HTTP by gRPC's table (PERMISSION_DENIED 403, UNAUTHENTICATED 401,
 * RESOURCE_EXHAUSTED 429 with Retry-After, …); the body is the status message. The
 * server's configuration generation (response header) keeps the cache exact across
 * policy changes.
 */
import { randomBytes } from 'node:crypto';
import {
  encodeCheckRequest,
  encodeReportRequest,
  GLOBAL_DICTIONARY,
  Presence,
  type AttributeBag,
  type ReferencedAttribute,
} from '../../attributes';
import { mixer } from '../../proto';
import type { HeaderOperations, ProxyConfig } from '../config-model';
import type { RequestVerdict, TrafficHook } from '../traffic-hook';
import { DecisionCache } from './decision-cache';
import { parsePolicySettings, type PolicySettings } from './policy-settings';
import { GrpcUnaryClient } from './grpc-unary-client';

const CHECK_PATH = '/istio.mixer.v1.Mixer/Check';
const REPORT_PATH = '/istio.mixer.v1.Mixer/Report';
const GENERATION_HEADER = 'x-switchboard-config-generation';

/** gRPC status → HTTP status of the local answer (gRPC's own mapping). */
const HTTP_STATUS_OF: Readonly<Record<number, number>> = {
  1: 499,
  2: 500,
  3: 400,
  4: 504,
  5: 404,
  6: 409,
  7: 403,
  8: 429,
  9: 400,
  10: 409,
  11: 400,
  12: 501,
  13: 500,
  14: 503,
  15: 500,
  16: 401,
};

/** Counters, for the proxy's metrics and tests. */
export interface PolicyClientStats {
  checks: number;
  cacheHits: number;
  denied: number;
  checkErrors: number;
  failedOpen: number;
  reportsSent: number;
  reportBatchesSent: number;
  reportBatchesFailed: number;
  /** Completed requests not reported because the buffer was full while the server did not take Reports. */
  reportsDropped: number;
}

export class PolicyClient implements TrafficHook {
  private settings: PolicySettings | undefined;
  private client: GrpcUnaryClient | undefined;
  private cache: DecisionCache<RequestVerdict> | undefined;
  private pending: AttributeBag[] = [];
  private reportTimer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  /** Set by close(): no more timers; close() sends what is left itself. */
  private closing = false;
  readonly stats: PolicyClientStats = {
    checks: 0,
    cacheHits: 0,
    denied: 0,
    checkErrors: 0,
    failedOpen: 0,
    reportsSent: 0,
    reportBatchesSent: 0,
    reportBatchesFailed: 0,
    reportsDropped: 0,
  };

  constructor(private readonly log: (message: string) => void = () => undefined) {}

  configurationApplied(config: ProxyConfig): void {
    const { settings, problems } = parsePolicySettings(config.policy);
    if (problems.length > 0) {
      this.log(
        `policy section refused, policy keeps its previous settings: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
      );
      return;
    }
    if (settings?.server !== this.settings?.server) {
      this.client?.close();
      this.client = settings === undefined ? undefined : new GrpcUnaryClient(settings.server);
    }
    if (settings?.cacheEntries !== this.settings?.cacheEntries) {
      this.cache =
        settings === undefined ? undefined : new DecisionCache({ maxEntries: settings.cacheEntries });
    }
    this.settings = settings;
  }

  checkRequest(attributes: AttributeBag): RequestVerdict | Promise<RequestVerdict> {
    const settings = this.settings;
    const client = this.client;
    if (settings === undefined || client === undefined) return ALLOWED;
    const cached = this.cache?.lookup(attributes);
    if (cached !== undefined) {
      this.stats.cacheHits++;
      attributes.set('check.cache_hit', true);
      return cached;
    }
    attributes.set('check.cache_hit', false);
    this.stats.checks++;
    const request = encodeCheckRequest({
      attributes,
      deduplicationId: randomBytes(12).toString('base64url'),
    });
    return client.call(CHECK_PATH, request, settings.checkTimeoutMs).then((result) => {
      if (result.code !== 0 || result.body === undefined) {
        this.stats.checkErrors++;
        attributes.set('check.error_code', BigInt(result.code));
        attributes.set('check.error_message', result.message);
        if (settings.failPolicy === 'FAIL_OPEN') {
          this.stats.failedOpen++;
          return ALLOWED;
        }
        return { allowed: false, status: 503, message: `policy check failed: ${result.message}` };
      }
      const response = mixer.CheckResponse.decode(result.body);
      const verdict = verdictOf(response.precondition);
      if (!verdict.allowed) this.stats.denied++;
      const generation = Number(result.headers?.[GENERATION_HEADER] ?? 0);
      const precondition = response.precondition;
      if (precondition !== undefined) {
        this.cache?.store(attributes, referencesOf(precondition.referencedAttributes), verdict, {
          validDurationMs: durationMs(precondition.validDuration),
          validUseCount: precondition.validUseCount,
          generation: Number.isFinite(generation) ? generation : 0,
        });
      }
      return verdict;
    });
  }

  requestCompleted(attributes: AttributeBag): void {
    const settings = this.settings;
    if (settings === undefined || this.client === undefined) return;
    this.pending.push(attributes);
    const overflow = this.pending.length - settings.reportBufferEntries;
    if (overflow > 0) {
      // Reporting never blocks traffic: beyond the bound the oldest are dropped, and counted.
      this.pending.splice(0, overflow);
      this.stats.reportsDropped += overflow;
    }
    if (this.pending.length >= settings.reportBatchEntries) this.flushSoon(0);
    else this.flushSoon(settings.reportBatchDelayMs);
  }

  /** Sends what is pending (every batch, while the server takes them), then closes. */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.reportTimer);
    this.reportTimer = undefined;
    await this.sending;
    while (this.pending.length > 0 && (await this.sendBatch())) {
      // One batch after the other until none is left or the server stops taking them.
    }
    clearTimeout(this.reportTimer);
    // What the server would not take by now is lost with the process: counted, not hidden.
    this.stats.reportsDropped += this.pending.length;
    this.pending = [];
    this.client?.close();
  }

  private flushSoon(delayMs: number): void {
    if (this.closing || (this.reportTimer !== undefined && delayMs > 0)) return;
    clearTimeout(this.reportTimer);
    this.reportTimer = setTimeout(() => {
      this.reportTimer = undefined;
      if (this.sending === undefined) {
        this.sending = this.sendBatch().then(
          () => undefined,
          () => undefined,
        );
        void this.sending.finally(() => (this.sending = undefined));
      }
    }, delayMs);
    this.reportTimer.unref();
  }

  /** Sends one batch; false when the server did not take it (it stays pending). */
  private async sendBatch(): Promise<boolean> {
    const settings = this.settings;
    const client = this.client;
    if (settings === undefined || client === undefined || this.pending.length === 0) return true;
    const batch = this.pending.splice(0, settings.reportBatchEntries);
    const result = await client.call(REPORT_PATH, encodeReportRequest(batch), settings.checkTimeoutMs * 5);
    if (result.code === 0) {
      // Reports also tell the generation: cached decisions of an older one go even when every
      // request meanwhile was answered from the cache.
      const generation = Number(result.headers?.[GENERATION_HEADER] ?? 0);
      if (Number.isFinite(generation)) this.cache?.observeGeneration(generation);
      this.stats.reportsSent += batch.length;
      this.stats.reportBatchesSent++;
      if (this.pending.length > 0)
        this.flushSoon(this.pending.length >= settings.reportBatchEntries ? 0 : settings.reportBatchDelayMs);
      return true;
    }
    // Kept (first in line) for the next attempt, within the buffer's bound.
    this.stats.reportBatchesFailed++;
    this.pending.unshift(...batch);
    const overflow = this.pending.length - settings.reportBufferEntries;
    if (overflow > 0) {
      this.pending.splice(0, overflow);
      this.stats.reportsDropped += overflow;
    }
    this.flushSoon(Math.max(settings.reportBatchDelayMs, 100));
    return false;
  }
}

const ALLOWED: RequestVerdict = Object.freeze({ allowed: true });

function verdictOf(precondition: mixer.CheckResponse_PreconditionResult | undefined): RequestVerdict {
  const code = precondition?.status?.code ?? 0;
  if (code !== 0) {
    const status = HTTP_STATUS_OF[code] ?? 500;
    const message = precondition?.status?.message ?? '';
    const retryAfter =
      status === 429 ? Math.max(1, Math.ceil(durationMs(precondition?.validDuration) / 1000)) : 0;
    return {
      allowed: false,
      status,
      message,
      ...(retryAfter > 0 ? { headers: { 'retry-after': String(retryAfter) } } : {}),
    };
  }
  const route = precondition?.routeDirective;
  if (route === undefined) return ALLOWED;
  return {
    allowed: true,
    requestHeaders: headerOperations(route.requestHeaderOperations),
    responseHeaders: headerOperations(route.responseHeaderOperations),
  };
}

function headerOperations(ops: readonly mixer.HeaderOperation[]): HeaderOperations {
  const set: [string, string][] = [];
  const add: [string, string][] = [];
  const remove: string[] = [];
  for (const op of ops) {
    if (op.operation === mixer.HeaderOperation_Operation.REMOVE) remove.push(op.name.toLowerCase());
    else if (op.operation === mixer.HeaderOperation_Operation.APPEND)
      add.push([op.name.toLowerCase(), op.value]);
    else set.push([op.name.toLowerCase(), op.value]);
  }
  return { set, add, remove };
}

/** The referenced attributes of an answer, names resolved (global words, then the answer's own). */
export function referencesOf(referenced: mixer.ReferencedAttributes | undefined): ReferencedAttribute[] {
  if (referenced === undefined) return [];
  const word = (index: number): string | undefined =>
    index >= 0 ? GLOBAL_DICTIONARY[index] : referenced.words[-index - 1];
  const out: ReferencedAttribute[] = [];
  for (const match of referenced.attributeMatches) {
    const name = word(match.name);
    if (name === undefined) continue;
    const presence =
      match.condition === mixer.ReferencedAttributes_Condition.ABSENCE ? Presence.ABSENCE : Presence.EXACT;
    const mapKey = match.mapKey === 0 ? undefined : word(match.mapKey);
    out.push(mapKey === undefined ? { name, presence } : { name, mapKey, presence });
  }
  return out;
}

function durationMs(duration: { seconds: bigint; nanos: number } | undefined): number {
  if (duration === undefined) return 0;
  return Number(duration.seconds) * 1000 + Math.floor(duration.nanos / 1_000_000);
}
