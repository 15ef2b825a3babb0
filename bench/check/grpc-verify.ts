/**
 * Checks what a server answers, with a real gRPC client (@grpc/grpc-js): h2load counts
 * HTTP statuses only, and a gRPC error is HTTP 200 too, so a wrong answer must be caught
 * here before (and after) it is counted as speed.
 */
import { Client, credentials, status as GrpcStatus } from '@grpc/grpc-js';
import { mixer } from '../../proto';

const CHECK_PATH = '/istio.mixer.v1.Mixer/Check';

/** One answer, summed up: `grpc OK, precondition 0, requestcount granted 1` and the like. */
export interface CheckAnswer {
  readonly grpcCode: number;
  readonly grpcDetails: string;
  /** Undefined when the call failed or the response had no precondition. */
  readonly preconditionCode: number | undefined;
  readonly preconditionMessage: string;
  /** Granted amount per quota name. */
  readonly granted: ReadonlyMap<string, bigint>;
}

/** How answers are summarised in the tally: one key per kind of answer. */
export function answerKey(answer: CheckAnswer): string {
  if (answer.grpcCode !== GrpcStatus.OK) return `grpc ${GrpcStatus[answer.grpcCode]}: ${answer.grpcDetails}`;
  const quotas = [...answer.granted].map(([name, amount]) => ` ${name}=${amount}`).join('');
  const pre = answer.preconditionCode === undefined ? 'none' : String(answer.preconditionCode);
  return `grpc OK, precondition ${pre}${answer.preconditionMessage ? ` (${answer.preconditionMessage})` : ''}, granted${quotas || ' nothing'}`;
}

/**
 * Sends `count` Checks of the encoded (unframed) request, `concurrency` at a time, over one
 * connection; returns how many answers of each kind came back.
 */
export async function sampleChecks(
  address: string,
  request: Uint8Array,
  count: number,
  concurrency = 8,
): Promise<Map<string, number>> {
  const client = new Client(address, credentials.createInsecure());
  const tally = new Map<string, number>();
  const body = Buffer.from(request);
  try {
    await new Promise<void>((resolve, reject) =>
      client.waitForReady(Date.now() + 10_000, (error) => (error ? reject(error) : resolve())),
    );
    let sent = 0;
    const worker = async (): Promise<void> => {
      while (sent < count) {
        sent++;
        const answer = await checkOnce(client, body);
        const key = answerKey(answer);
        tally.set(key, (tally.get(key) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  } finally {
    client.close();
  }
  return tally;
}

function checkOnce(client: Client, body: Buffer): Promise<CheckAnswer> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      CHECK_PATH,
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      { deadline: Date.now() + 10_000 },
      (error, response) => {
        if (error) {
          resolve({
            grpcCode: error.code ?? GrpcStatus.UNKNOWN,
            grpcDetails: error.details ?? error.message,
            preconditionCode: undefined,
            preconditionMessage: '',
            granted: new Map(),
          });
          return;
        }
        const decoded = mixer.CheckResponse.decode(response!);
        const granted = new Map<string, bigint>();
        for (const name of Object.keys(decoded.quotas).sort()) {
          granted.set(name, decoded.quotas[name]!.grantedAmount);
        }
        resolve({
          grpcCode: GrpcStatus.OK,
          grpcDetails: '',
          preconditionCode:
            decoded.precondition === undefined ? undefined : (decoded.precondition.status?.code ?? 0),
          preconditionMessage: decoded.precondition?.status?.message ?? '',
          granted,
        });
      },
    );
  });
}
