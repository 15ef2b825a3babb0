/**
 * The demo's traffic generator: a short script of requests to the frontend (through its
 * inbound proxy), each printed with what happened to it and which rule decided.
 */
import * as http from 'node:http';

/** One step of the script: `count` requests, all at once when `concurrent`. */
export interface TrafficStep {
  readonly say: string;
  readonly user: string;
  readonly group?: string;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly count?: number;
  readonly concurrent?: boolean;
}

export const SCRIPT: readonly TrafficStep[] = [
  { say: 'alice (admin) opens the shop', user: 'alice', method: 'GET', path: '/shop' },
  { say: 'carol (reader) opens the shop', user: 'carol', method: 'GET', path: '/shop' },
  { say: 'bob (reviewer) posts a review', user: 'bob', method: 'POST', path: '/review/1' },
  { say: 'carol (reader) posts a review', user: 'carol', method: 'POST', path: '/review/2' },
  { say: 'mallory (blocked) opens the shop', user: 'mallory', method: 'GET', path: '/shop' },
  { say: 'alice asks the catalog to reindex', user: 'alice', method: 'GET', path: '/admin/reindex' },
  {
    say: 'dave (staff) sends 12 requests at once',
    user: 'dave',
    group: 'staff',
    method: 'GET',
    path: '/shop',
    count: 12,
    concurrent: true,
  },
  { say: 'alice opens the shop 10 more times', user: 'alice', method: 'GET', path: '/shop', count: 10 },
];

/** What happened to one request, in words: `allowed`, `denied by rule X`, `rate limited by quota Q`. */
export function outcomeOf(status: number, body: string): string {
  if (status < 400) return 'allowed';
  // A denial's body is the policy server's status message: `handler.handler.namespace:message`.
  const rule = /^([\w-]+)\.handler\.[\w-]+:/.exec(body);
  if (status === 429) {
    const quota = /quota ([\w-]+)\./.exec(body);
    return `rate limited by quota ${quota?.[1] ?? 'unknown'}`;
  }
  if (rule !== null) return `denied by rule ${rule[1]}`;
  return `failed (${status})`;
}

export interface StepResult {
  readonly step: TrafficStep;
  /** Outcome → how many requests had it. */
  readonly outcomes: ReadonlyMap<string, number>;
  readonly statuses: readonly number[];
  /** The first refusal's body (its reason). */
  readonly reason: string | undefined;
}

/** Runs one step against the frontend's inbound proxy at `port`. */
export async function runStep(port: number, step: TrafficStep, signal: AbortSignal): Promise<StepResult> {
  const count = step.count ?? 1;
  const answers: { status: number; body: string }[] = [];
  if (step.concurrent === true) {
    answers.push(...(await Promise.all(Array.from({ length: count }, () => send(port, step, signal)))));
  } else {
    for (let i = 0; i < count && !signal.aborted; i++) answers.push(await send(port, step, signal));
  }
  const outcomes = new Map<string, number>();
  for (const a of answers) {
    const outcome = outcomeOf(a.status, a.body);
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  return {
    step,
    outcomes,
    statuses: answers.map((a) => a.status),
    reason: answers.find((a) => a.status >= 400)?.body,
  };
}

function send(
  port: number,
  step: TrafficStep,
  signal: AbortSignal,
): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = { host: 'frontend', 'x-user': step.user };
  if (step.group !== undefined) headers['x-group'] = step.group;
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: step.method, path: step.path, headers, signal, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', (error) => resolve({ status: 0, body: error.message }));
      },
    );
    req.on('error', (error) => resolve({ status: 0, body: error.message }));
    req.end(step.method === 'POST' ? 'five stars' : undefined);
  });
}
