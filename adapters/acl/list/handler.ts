/**
 * The list checker's handler. It answers from the last good list: the configured overrides,
 * plus the provider's entries when there is a provider. The provider is fetched before the
 * handler serves and every refreshInterval after; a failed refresh keeps the last good list
 * (logged once per streak of failures), and a list not refreshed within ttl stops serving:
 * checks then fail as faults (Mixer's handler returned an error, which failed the Check),
 * so each rule's failure policy decides, until a refresh succeeds.
 *
 * Answers are Mixer's: a whitelist miss and a blacklist hit are PERMISSION_DENIED
 * (`<value> is not whitelisted`, `<value> is blacklisted`); a value the list cannot read is
 * INVALID_ARGUMENT; every answer is cacheable for cachingInterval and cachingUseCount.
 */
import { createHash } from 'node:crypto';
import { Duration, IpAddress, Timestamp, type AttributeValue } from '../../../attributes';
import type { AdapterEnv, Handler, TimerHandle } from '../../contract';
import {
  OK_STATUS,
  StatusCode,
  type CheckResult,
  type ListEntryHandler,
  type ListEntryInstance,
} from '../../../templates';
import { formatMs, type ListConfig } from './config';
import { compileEntryList, type EntryList } from './entry-lists';
import { parseIpText } from './ip-ranges';

/**
 * The fault a check meets when there is no list to answer from: the provider has not been
 * fetched yet, or its list outlived ttl. Thrown, not answered: the rule's failure policy
 * decides whether the request passes.
 */
export class ListUnavailableError extends Error {
  override readonly name = 'ListUnavailableError';
  readonly code = 'LIST_UNAVAILABLE';
}

/** A fetch never takes longer than this or refreshInterval, whichever is longer. */
const MIN_FETCH_TIMEOUT_MS = 1000;

function describeValue(value: AttributeValue | undefined): string {
  if (value === undefined) return 'an absent value';
  if (typeof value === 'object' && !(value instanceof Timestamp) && !(value instanceof Duration)) {
    return 'a string map';
  }
  return String(value);
}

/** The value as the list's messages show it: its text, or the address as Go prints it. */
function textOf(text: string | undefined, address: IpAddress | undefined): string {
  return text ?? String(address);
}

function entries(count: number): string {
  return count === 1 ? '1 entry' : `${count} entries`;
}

function reasonOf(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) return cause.message;
  return err instanceof Error ? err.message : String(err);
}

class ListCheckerHandler {
  private readonly okResult: CheckResult;
  private readonly fetchTimeoutMs: number;
  private readonly abort = new AbortController();
  /** The last good list; undefined until the first fetch succeeds. */
  private list: EntryList | undefined;
  private listDigest = '';
  /** env.now() when the provider last answered with a good list (changed or not). */
  private listFetchedAtMs = 0;
  private lastError: string | undefined;
  private failedRefreshes = 0;
  private refreshTimer: TimerHandle | undefined;
  private refreshing: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly config: ListConfig,
    private readonly env: AdapterEnv,
  ) {
    this.okResult = Object.freeze(this.result(StatusCode.OK, ''));
    this.fetchTimeoutMs = Math.max(config.refreshInterval, MIN_FETCH_TIMEOUT_MS);
  }

  /** Loads the list: the overrides at once, the provider's with a first fetch, then every refreshInterval. */
  async start(): Promise<void> {
    if (this.config.providerUrl === '') {
      const compiled = compileEntryList(this.config.entryType, '', this.config.overrides);
      // Overrides were validated with the configuration; failing here is a bug, not a configuration error.
      if (!compiled.ok) throw new Error(`listchecker ${this.env.handlerName}: overrides ${compiled.problem}`);
      this.list = compiled.list;
      return;
    }
    await this.refresh();
    this.refreshTimer = this.env.every(() => this.startRefresh(), this.config.refreshInterval);
  }

  handleListEntry(instance: ListEntryInstance): CheckResult {
    if (this.closing !== undefined) {
      throw new Error(`listchecker ${this.env.handlerName}: the handler is closed`);
    }
    return this.check(this.currentList(), instance.value);
  }

  /** Stops refreshing, cancels a fetch under way and waits for it. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.refreshTimer?.cancel();
    this.abort.abort();
    await this.refreshing;
  }

  private currentList(): EntryList {
    const list = this.list;
    if (this.config.providerUrl === '') return list as EntryList;
    if (list === undefined) {
      throw new ListUnavailableError(
        `listchecker ${this.env.handlerName}: no list from ${this.config.providerUrl} yet: ${this.lastError ?? 'the first fetch has not completed'}`,
      );
    }
    const ageMs = this.env.now() - this.listFetchedAtMs;
    if (ageMs > this.config.ttl) {
      throw new ListUnavailableError(
        `listchecker ${this.env.handlerName}: the list from ${this.config.providerUrl} has expired: last refreshed ${formatMs(ageMs)} ago, ` +
          `ttl is ${formatMs(this.config.ttl)}; last refresh error: ${this.lastError ?? 'none'}`,
      );
    }
    return list;
  }

  private check(list: EntryList, value: AttributeValue | undefined): CheckResult {
    // An address is formatted only when a text list or a message needs its text: an IP list
    // answers most lookups without it.
    let text: string | undefined;
    let address: IpAddress | undefined;
    if (typeof value === 'string') {
      text = value;
    } else if (value instanceof IpAddress || value instanceof Uint8Array) {
      // Mixer read bytes as an IP address too.
      address = value instanceof IpAddress ? value : new IpAddress(value);
    } else {
      return this.result(
        StatusCode.INVALID_ARGUMENT,
        `${describeValue(value)} is not a valid string or IP address`,
      );
    }
    let found: boolean;
    if (list.kind === 'text') {
      // Mixer looked addresses up in text lists by their text.
      text ??= textOf(text, address);
      found = list.has(text);
    } else {
      address ??= parseIpText(text!);
      if (address === undefined || (address.bytes.length !== 4 && address.bytes.length !== 16)) {
        return this.result(StatusCode.INVALID_ARGUMENT, `${textOf(text, address)} is not a valid IP address`);
      }
      found = list.has(address);
    }
    if (this.config.blacklist) {
      return found
        ? this.result(StatusCode.PERMISSION_DENIED, `${textOf(text, address)} is blacklisted`)
        : this.okResult;
    }
    return found
      ? this.okResult
      : this.result(StatusCode.PERMISSION_DENIED, `${textOf(text, address)} is not whitelisted`);
  }

  private result(code: number, message: string): CheckResult {
    return {
      status: code === StatusCode.OK ? OK_STATUS : { code, message },
      validDurationMs: this.config.cachingInterval,
      validUseCount: this.config.cachingUseCount,
    };
  }

  /** A timer tick: starts a refresh unless one is still under way (a slow provider skips ticks). */
  private startRefresh(): void {
    if (this.refreshing !== undefined || this.closing !== undefined) return;
    this.refreshing = this.refresh().finally(() => {
      this.refreshing = undefined;
    });
  }

  /** Fetches and installs the provider's list. Never rejects: failures are recorded and logged. */
  private async refresh(): Promise<void> {
    const url = this.config.providerUrl;
    let body: string;
    try {
      const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.fetchTimeoutMs)]);
      const response = await fetch(url, { signal });
      if (response.status !== 200) {
        await response.body?.cancel();
        this.failed(`could not fetch the list from ${url}: HTTP ${response.status}`);
        return;
      }
      body = await response.text();
    } catch (err) {
      this.failed(`could not fetch the list from ${url}: ${reasonOf(err)}`);
      return;
    }
    if (this.closing !== undefined) return;
    const digest = createHash('sha256').update(body).digest('hex');
    if (this.list === undefined || digest !== this.listDigest) {
      const compiled = compileEntryList(this.config.entryType, body, this.config.overrides);
      if (!compiled.ok) {
        this.failed(`could not parse the list from ${url}: ${compiled.problem}`);
        return;
      }
      this.list = compiled.list;
      this.listDigest = digest;
      this.env.logger.info(
        `listchecker ${this.env.handlerName}: installed a list of ${entries(compiled.list.size)} from ${url}`,
      );
    }
    this.listFetchedAtMs = this.env.now();
    if (this.failedRefreshes > 0) {
      this.env.logger.info(
        `listchecker ${this.env.handlerName}: refreshed the list from ${url} after ${this.failedRefreshes} failed attempts`,
      );
    }
    this.failedRefreshes = 0;
    this.lastError = undefined;
  }

  private failed(message: string): void {
    if (this.closing !== undefined) return;
    this.lastError = message;
    if (this.failedRefreshes++ > 0) return;
    const keeping =
      this.list === undefined
        ? 'no list yet: checks fail until a fetch succeeds'
        : `keeping the last good list (${entries(this.list.size)}) until it expires (ttl ${formatMs(this.config.ttl)})`;
    this.env.logger.error(`listchecker ${this.env.handlerName}: ${message}; ${keeping}`);
  }
}

/**
 * A list checker handler, its list loaded: a provider's list is fetched before this resolves
 * (a failed first fetch is logged, and checks fail until a refresh succeeds, as in Mixer).
 */
export async function createListCheckerHandler(config: ListConfig, env: AdapterEnv) {
  const handler = new ListCheckerHandler(config, env) satisfies ListEntryHandler & Handler;
  await handler.start();
  return handler;
}
