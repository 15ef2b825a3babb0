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
 *   checkRetries: 2            # further attempts of a Check the server did not answer (same deduplication id)
 *   checkRetryBaseMs: 20       # back-off before the first retry, doubled each time (jittered)…
 *   checkRetryMaxMs: 200       # …up to this
 *   tcpReportIntervalMs: 10000 # an open TCP connection is reported this often (and on open and close)
 *   quotas: …                  # which requests ask for which quotas (quota-specs.ts)
 *   prefetchMinAmount: 5       # prefetched quotas (quota-prefetch.ts): the fewest units a fetch asks for,
 *   prefetchWindowMs: 1000     # the window whose spending sizes the next fetch,
 *   prefetchCloseWaitMs: 1000  # how long a partial grant stops further asks
 * ```
 *
 * Reports are batched by report-sender.ts: every batch carries `x-switchboard-report-id`
 * (128 random bits, hex), the same when the server did not take it and it is sent again.
 *
 * Denials map to HTTP by gRPC's table (PERMISSION_DENIED 403, UNAUTHENTICATED 401,
 * RESOURCE_EXHAUSTED 429 with Retry-After, …); the body is the status message. A quota
 * granted less than the request's charge answers 429 too. The
 * server's configuration generation (response header) keeps the cache exact across
 * policy changes.
 */
import {
  encodeCheckRequest,
  GLOBAL_DICTIONARY,
  Presence,
  type AttributeBag,
  type ReferencedAttribute,
} from '../../attributes';
import { mixer } from '../../proto';
import type { HeaderOperations, ProxyConfig } from '../config-model';
import { randomBase64url } from '../entropy-pool';
import type { CheckAttributes } from '../request-attributes';
import type { HttpRequestFacts } from '../traffic-facts';
import type { RequestVerdict, TrafficHook } from '../traffic-hook';
import { DecisionCache } from './decision-cache';
import { parsePolicySettings, type PolicySettings } from './policy-settings';
import { GrpcUnaryClient, type UnaryResult } from './grpc-unary-client';
import { QuotaAllowance } from './quota-prefetch';
import { ReportSender } from './report-sender';
import { RequestReportWriter } from './request-report';

export { REPORT_ID_HEADER } from './report-sender';
import type { QuotaNeed } from './quota-specs';

const CHECK_PATH = '/istio.mixer.v1.Mixer/Check';
const GENERATION_HEADER = 'x-switchboard-config-generation';
const UNAVAILABLE = 14;
/** How long an idle prefetched allowance is kept, in ms. */
const ALLOWANCE_IDLE_MS = 60_000;

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
  /** Check attempts repeated after the server did not answer. */
  checkRetries: number;
  /** Misses answered by waiting for a Check already in flight for the same key (no Check of their own). */
  checksCoalesced: number;
  /** Quota charges asked of the server (exact quotas, and prefetch fetches). */
  quotaCalls: number;
  /** Quota charges served from a prefetched allowance. */
  quotaCacheHits: number;
  /** Requests refused (429) for a quota. */
  quotaDenied: number;
  /** Quota units the server granted, in total (exact charges and prefetched allowances). */
  quotaUnitsGranted: number;
  /** TCP connection reports (open, continue, close) queued. */
  tcpReports: number;
}

/** The policy client's counters and caches, for the proxy's admin endpoint. */
export interface PolicyClientView extends PolicyClientStats {
  /** The policy server, or null when the policy section names none (policy off). */
  readonly server: string | null;
  /** Decisions held, and the cache's own counters. */
  readonly decisionCache: { readonly size: number; readonly [counter: string]: number } | null;
  /** Completed requests waiting to be reported (a failed batch included). */
  readonly reportsPending: number;
  /** Prefetched quota allowances held, by quota. */
  readonly quotaAllowances: Readonly<Record<string, number>>;
}

/** A quota a request asks for, with its prefetched allowance when there is one. */
interface QuotaAsk {
  readonly need: QuotaNeed;
  readonly allowance: QuotaAllowance | undefined;
  /** Units asked of the server. */
  readonly amount: number;
}

export class PolicyClient implements TrafficHook {
  private settings: PolicySettings | undefined;
  private client: GrpcUnaryClient | undefined;
  private cache: DecisionCache<RequestVerdict> | undefined;
  private allowances = new Map<string, DecisionCache<QuotaAllowance>>();
  /** Checks in flight without quotas, by the key their answer will most likely have. */
  private readonly inflight = new Map<string, Promise<RequestVerdict>>();
  private readonly openConnections = new Map<string, { bag: AttributeBag; timer: NodeJS.Timeout }>();
  /** Set by close(): no retries, no new periodic reports. */
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
    checkRetries: 0,
    checksCoalesced: 0,
    quotaCalls: 0,
    quotaCacheHits: 0,
    quotaDenied: 0,
    quotaUnitsGranted: 0,
    tcpReports: 0,
  };

  /** Counters and cache sizes, as the admin endpoint shows them. */
  view(): PolicyClientView {
    const allowances: Record<string, number> = {};
    for (const [quota, cache] of this.allowances) allowances[quota] = cache.size;
    return {
      server: this.settings?.server ?? null,
      ...this.stats,
      decisionCache: this.cache === undefined ? null : { size: this.cache.size, ...this.cache.stats },
      reportsPending: this.reports.pendingCount,
      quotaAllowances: allowances,
    };
  }

  /** Writes each completed request into the open Report batch. */
  private readonly requestReports = new RequestReportWriter();
  private readonly reports = new ReportSender(
    () =>
      this.settings === undefined || this.client === undefined
        ? undefined
        : { settings: this.settings, client: this.client },
    this.stats,
    (result) => {
      // Reports also tell the generation: cached decisions of an older one go even when every
      // request meanwhile was answered from the cache.
      const generation = generationOf(result);
      this.cache?.observeGeneration(generation);
      for (const allowances of this.allowances.values()) allowances.observeGeneration(generation);
    },
  );

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
    if (
      settings?.prefetchMinAmount !== this.settings?.prefetchMinAmount ||
      settings?.prefetchWindowMs !== this.settings?.prefetchWindowMs ||
      settings?.prefetchCloseWaitMs !== this.settings?.prefetchCloseWaitMs
    ) {
      this.allowances = new Map();
    }
    this.settings = settings;
  }

  checkRequest(attributes: CheckAttributes): RequestVerdict | Promise<RequestVerdict> {
    const settings = this.settings;
    const client = this.client;
    if (settings === undefined || client === undefined) return ALLOWED;
    const needs = settings.quotas.empty ? NO_NEEDS : settings.quotas.needsOf(attributes);
    const cached = this.cache?.lookup(attributes);
    if (cached !== undefined) {
      this.stats.cacheHits++;
      attributes.set('check.cache_hit', true);
      if (!cached.allowed || needs.length === 0) return cached;
    } else {
      attributes.set('check.cache_hit', false);
    }
    let local: LocalSpending = NOTHING_LOCAL;
    if (needs.length > 0) {
      const spending = this.spendLocally(needs, attributes, settings);
      if ('allowed' in spending) return spending;
      local = spending;
      if (local.asks.length === 0) {
        attributes.set('quota.cache_hit', true);
        if (cached !== undefined) return cached;
      }
    }
    if (cached !== undefined || needs.length > 0) {
      if (cached === undefined) this.stats.checks++;
      return this.ask(attributes, local, settings, client);
    }
    return this.checkOnce(attributes, settings, client);
  }

  /**
   * A miss without quotas. When the same decision was just missed by a request still waiting
   * for its answer (a decision expired under load: every request in flight misses at once),
   * this one waits for that answer and looks the cache up again — exact, since the cache
   * keys the answer by what it really read — and asks on its own only if that misses too.
   */
  private checkOnce(
    attributes: CheckAttributes,
    settings: PolicySettings,
    client: GrpcUnaryClient,
  ): Promise<RequestVerdict> {
    const key = this.cache?.likelyKey(attributes);
    const inflight = key === undefined ? undefined : this.inflight.get(key);
    if (inflight !== undefined) {
      const again = (): RequestVerdict | Promise<RequestVerdict> => {
        const cached = this.cache?.lookup(attributes);
        if (cached !== undefined) {
          this.stats.checksCoalesced++;
          attributes.set('check.cache_hit', true);
          return cached;
        }
        this.stats.checks++;
        return this.ask(attributes, NOTHING_LOCAL, settings, client);
      };
      return inflight.then(again, again);
    }
    this.stats.checks++;
    const asked = this.ask(attributes, NOTHING_LOCAL, settings, client);
    if (key !== undefined) {
      this.inflight.set(key, asked);
      const done = (): void => {
        if (this.inflight.get(key) === asked) this.inflight.delete(key);
      };
      asked.then(done, done);
    }
    return asked;
  }

  /**
   * Prefetched quotas spent from their allowances where they cover the charge; what is left
   * to ask the server (exact quotas, and allowances that cannot cover theirs), or a 429 when
   * an allowance in back-off cannot.
   */
  private spendLocally(
    needs: readonly QuotaNeed[],
    attributes: CheckAttributes,
    settings: PolicySettings,
  ): LocalSpending | RequestVerdict {
    const now = Date.now();
    const asks: QuotaAsk[] = [];
    const spent: [QuotaAllowance, number][] = [];
    for (const need of needs) {
      if (need.mode === 'exact') {
        asks.push({ need, allowance: undefined, amount: need.charge });
        continue;
      }
      const allowance = this.allowancesOf(need.name).lookup(attributes);
      if (allowance !== undefined && allowance.take(need.charge, now)) {
        this.stats.quotaCacheHits++;
        spent.push([allowance, need.charge]);
        if (allowance.wantsRefill(now)) this.refill(attributes, need, allowance, settings);
        continue;
      }
      if (allowance !== undefined && allowance.closed(now)) {
        giveBack(spent);
        this.stats.quotaDenied++;
        attributes.set('quota.cache_hit', true);
        return quotaDenial(need.name, '', 1000);
      }
      asks.push({
        need,
        allowance,
        amount: allowance?.fetchAmount(need.charge, now) ?? Math.max(need.charge, settings.prefetchMinAmount),
      });
    }
    return { asks, spent };
  }

  private allowancesOf(quota: string): DecisionCache<QuotaAllowance> {
    let cache = this.allowances.get(quota);
    if (cache === undefined) {
      cache = new DecisionCache({ maxEntries: this.settings?.cacheEntries ?? 10_000 });
      this.allowances.set(quota, cache);
    }
    return cache;
  }

  /** Asks the server: the Check (unless cached) and the quotas in `asks`. */
  private async ask(
    attributes: CheckAttributes,
    local: LocalSpending,
    settings: PolicySettings,
    client: GrpcUnaryClient,
  ): Promise<RequestVerdict> {
    const verdict = await this.askServer(attributes, local.asks, settings, client);
    // Units spent locally go back when the request is refused after all.
    if (!verdict.allowed) giveBack(local.spent);
    return verdict;
  }

  private async askServer(
    attributes: CheckAttributes,
    asks: readonly QuotaAsk[],
    settings: PolicySettings,
    client: GrpcUnaryClient,
  ): Promise<RequestVerdict> {
    const quotas = new Map<string, { amount: bigint; bestEffort: boolean }>();
    for (const ask of asks) {
      quotas.set(ask.need.name, { amount: BigInt(ask.amount), bestEffort: ask.need.mode === 'prefetch' });
    }
    if (asks.length > 0) {
      this.stats.quotaCalls += asks.length;
      attributes.set('quota.cache_hit', false);
    }
    const request = encodeCheckRequest({
      attributes,
      deduplicationId: randomBase64url(12),
      ...(quotas.size > 0 ? { quotas } : {}),
    });
    const result = await this.callWithRetries(CHECK_PATH, request, settings, client);
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
    const generation = generationOf(result);
    const precondition = response.precondition;
    if (precondition !== undefined) {
      this.cache?.store(attributes, referencesOf(precondition.referencedAttributes), verdict, {
        validDurationMs: durationMs(precondition.validDuration),
        validUseCount: precondition.validUseCount,
        generation,
      });
    }
    if (!verdict.allowed) {
      this.stats.denied++;
      return verdict;
    }
    const now = Date.now();
    for (const ask of asks) {
      const answer = response.quotas[ask.need.name];
      const granted = Number(answer?.grantedAmount ?? 0n);
      const validMs = durationMs(answer?.validDuration);
      this.stats.quotaUnitsGranted += granted;
      if (ask.need.mode === 'exact') {
        if (granted >= ask.need.charge) continue;
        this.stats.quotaDenied++;
        return quotaDenial(ask.need.name, answer?.status?.message ?? '', validMs);
      }
      const allowance = ask.allowance ?? this.storeAllowance(ask.need.name, attributes, answer, generation);
      allowance.granted(ask.amount, granted, validMs, now);
      if (!allowance.take(ask.need.charge, now)) {
        this.stats.quotaDenied++;
        return quotaDenial(ask.need.name, answer?.status?.message ?? '', validMs);
      }
    }
    return verdict;
  }

  private storeAllowance(
    quota: string,
    attributes: CheckAttributes,
    answer: mixer.CheckResponse_QuotaResult | undefined,
    generation: number,
  ): QuotaAllowance {
    const settings = this.settings!;
    const allowance = new QuotaAllowance({
      minAmount: settings.prefetchMinAmount,
      predictWindowMs: settings.prefetchWindowMs,
      closeWaitMs: settings.prefetchCloseWaitMs,
    });
    this.allowancesOf(quota).store(attributes, referencesOf(answer?.referencedAttributes), allowance, {
      validDurationMs: ALLOWANCE_IDLE_MS,
      validUseCount: Number.MAX_SAFE_INTEGER,
      generation,
    });
    return allowance;
  }

  /** Fetches more of a prefetched quota in the background; the request does not wait. */
  private refill(
    attributes: CheckAttributes,
    need: QuotaNeed,
    allowance: QuotaAllowance,
    settings: PolicySettings,
  ): void {
    const client = this.client;
    if (client === undefined) return;
    allowance.refilling = true;
    const amount = allowance.fetchAmount(need.charge, Date.now());
    this.stats.quotaCalls++;
    const request = encodeCheckRequest({
      attributes,
      deduplicationId: randomBase64url(12),
      quotas: new Map([[need.name, { amount: BigInt(amount), bestEffort: true }]]),
    });
    void this.callWithRetries(CHECK_PATH, request, settings, client).then((result) => {
      allowance.refilling = false;
      if (result.code !== 0 || result.body === undefined) return;
      const answer = mixer.CheckResponse.decode(result.body).quotas[need.name];
      this.stats.quotaUnitsGranted += Number(answer?.grantedAmount ?? 0n);
      allowance.granted(
        amount,
        Number(answer?.grantedAmount ?? 0n),
        durationMs(answer?.validDuration),
        Date.now(),
      );
    });
  }

  /**
   * One call, repeated (same message, so the same deduplication id) while the server is
   * unreachable, with exponential back-off and jitter, up to `checkRetries` more times.
   */
  private async callWithRetries(
    path: string,
    message: Uint8Array,
    settings: PolicySettings,
    client: GrpcUnaryClient,
  ): Promise<UnaryResult> {
    let result = await client.call(path, message, settings.checkTimeoutMs);
    for (
      let attempt = 0;
      attempt < settings.checkRetries && result.code === UNAVAILABLE && !this.closing;
      attempt++
    ) {
      const backoffMs = Math.min(settings.checkRetryMaxMs, settings.checkRetryBaseMs * 2 ** attempt);
      await new Promise((resolve) => setTimeout(resolve, backoffMs / 2 + Math.random() * (backoffMs / 2)));
      this.stats.checkRetries++;
      result = await client.call(path, message, settings.checkTimeoutMs);
    }
    return result;
  }

  requestCompleted(facts: HttpRequestFacts, checked: CheckAttributes | undefined): void {
    if (this.settings === undefined) return;
    this.queueReport(this.requestReports.prepare(facts, checked));
    this.requestReports.release();
  }

  connectionOpened(attributes: AttributeBag, progress?: () => AttributeBag): void {
    const settings = this.settings;
    if (settings === undefined || this.client === undefined) return;
    this.queueTcpReport(attributes);
    const id = attributes.get('connection.id');
    if (progress === undefined || typeof id !== 'string' || this.closing) return;
    const timer = setInterval(() => {
      const bag = progress();
      const open = this.openConnections.get(id);
      if (open !== undefined) withDeltas(bag, open.bag);
      this.openConnections.set(id, { bag, timer });
      this.queueTcpReport(bag);
    }, settings.tcpReportIntervalMs);
    timer.unref();
    this.openConnections.set(id, { bag: attributes, timer });
  }

  connectionClosed(attributes: AttributeBag): void {
    const id = attributes.get('connection.id');
    const open = typeof id === 'string' ? this.openConnections.get(id) : undefined;
    if (open !== undefined) {
      clearInterval(open.timer);
      this.openConnections.delete(id as string);
      // Since the last report: connection.received.bytes and .sent.bytes are deltas (Mixer's meaning).
      withDeltas(attributes, open.bag);
    }
    this.queueTcpReport(attributes);
  }

  private queueTcpReport(attributes: AttributeBag): void {
    if (this.settings === undefined || this.client === undefined) return;
    this.stats.tcpReports++;
    this.queueReport(attributes);
  }

  private queueReport(set: AttributeBag | RequestReportWriter): void {
    try {
      this.reports.queue(set);
    } catch (error) {
      // A value no attribute type carries: that record is dropped (and counted), traffic goes on.
      this.log(`report not queued: ${(error as Error).message}`);
    }
  }

  /** Sends what is pending (every batch, while the server takes them), then closes. */
  async close(): Promise<void> {
    this.closing = true;
    for (const open of this.openConnections.values()) clearInterval(open.timer);
    this.openConnections.clear();
    await this.reports.close();
    this.client?.close();
  }
}

/** Turns the byte counts of `bag` into deltas since `previous` (the `_total` ones stay totals). */
function withDeltas(bag: AttributeBag, previous: AttributeBag): void {
  for (const [delta, total] of [
    ['connection.received.bytes', 'connection.received.bytes_total'],
    ['connection.sent.bytes', 'connection.sent.bytes_total'],
  ] as const) {
    const now = bag.get(total);
    const before = previous.get(total);
    if (typeof now === 'bigint' && typeof before === 'bigint') bag.set(delta, now - before);
  }
}

const ALLOWED: RequestVerdict = Object.freeze({ allowed: true });
const NO_NEEDS: readonly QuotaNeed[] = Object.freeze([]);

/** Prefetched quotas spent locally for a request, and what is left to ask the server. */
interface LocalSpending {
  readonly asks: readonly QuotaAsk[];
  readonly spent: readonly (readonly [QuotaAllowance, number])[];
}
const NOTHING_LOCAL: LocalSpending = Object.freeze({ asks: [], spent: [] });

function giveBack(spent: LocalSpending['spent']): void {
  for (const [allowance, amount] of spent) allowance.giveBack(amount);
}

/** A 429 for quota `name`: the server's message when it gave one, Retry-After from the grant's validity. */
function quotaDenial(name: string, message: string, validMs: number): RequestVerdict {
  return {
    allowed: false,
    status: 429,
    message: message === '' ? `quota ${name} exhausted` : message,
    headers: { 'retry-after': String(Math.max(1, Math.ceil(validMs / 1000))) },
  };
}

function generationOf(result: UnaryResult): number {
  const generation = Number(result.headers?.[GENERATION_HEADER] ?? 0);
  return Number.isFinite(generation) ? generation : 0;
}

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
