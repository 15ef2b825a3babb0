/**
 * The OPA command-line tool: finding it, and running it in a child process — `opa build -t
 * wasm` to compile Rego to WebAssembly, `opa check --format json` for errors with their
 * line and column, `opa test` for Rego unit tests. Every run is asynchronous (execFile), so
 * compiling never blocks the event loop that serves Checks.
 *
 * Where the tool is looked for:
 * 1. the handler's `opaPath` parameter (or the caller's explicit path), when given — and
 *    then only there: a path the operator chose that is wrong is an error, not a fallback;
 * 2. else the `SWITCHBOARD_OPA` environment variable, when set — and then only there;
 * 3. else `~/.cache/switchboard/opa/bin/opa`, where `scripts/install-opa.sh` builds it,
 *    then `opa` on the PATH.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';

/** The OPA release the project installs and tests with. */
export const OPA_VERSION = 'v1.22.3';

/** Environment variable naming the `opa` executable. */
export const OPA_PATH_ENV = 'SWITCHBOARD_OPA';

/** Where `scripts/install-opa.sh` builds the tool. */
export const DEFAULT_OPA_PATH = path.join(homedir(), '.cache', 'switchboard', 'opa', 'bin', 'opa');

/** The commands that install the compiler, for messages. */
export const OPA_INSTALL_HINT =
  `install it with: bash scripts/install-opa.sh (in Switchboard's source), or ` +
  `GOBIN=~/.cache/switchboard/opa/bin go install github.com/open-policy-agent/opa@${OPA_VERSION}; ` +
  `or point ${OPA_PATH_ENV} at an opa executable`;

/** The compiler is needed and not found. */
export class OpaMissingError extends Error {
  override readonly name = 'OpaMissingError';

  constructor(
    /** The places looked at, in order. */
    readonly lookedAt: readonly string[],
    /** What needed it, such as `compiling the policy`. */
    purpose: string,
  ) {
    super(
      `the OPA compiler (opa ${OPA_VERSION}) is needed for ${purpose} and was not found ` +
        `(looked at ${lookedAt.join(', ')}); ${OPA_INSTALL_HINT}`,
    );
  }
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The path of the `opa` executable (see the file comment for the order), or undefined.
 * `lookedAt` receives every place looked at, for messages. Reads the file system only.
 */
export function findOpa(explicit?: string, lookedAt: string[] = []): string | undefined {
  const chosen =
    explicit !== undefined && explicit !== ''
      ? { path: explicit, by: 'opaPath' }
      : process.env[OPA_PATH_ENV] !== undefined && process.env[OPA_PATH_ENV] !== ''
        ? { path: process.env[OPA_PATH_ENV], by: OPA_PATH_ENV }
        : undefined;
  if (chosen !== undefined) {
    lookedAt.push(`${chosen.path} (${chosen.by})`);
    return isExecutable(chosen.path) ? chosen.path : undefined;
  }
  lookedAt.push(DEFAULT_OPA_PATH);
  if (isExecutable(DEFAULT_OPA_PATH)) return DEFAULT_OPA_PATH;
  lookedAt.push('opa on the PATH');
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, 'opa');
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The `opa` executable, or an error naming where it was looked for and how to install it.
 * @throws OpaMissingError
 */
export function requireOpa(explicit: string | undefined, purpose: string): string {
  const lookedAt: string[] = [];
  const found = findOpa(explicit, lookedAt);
  if (found === undefined) throw new OpaMissingError(lookedAt, purpose);
  return found;
}

/** What a run of the tool produced. */
export interface OpaRun {
  /** The exit code; null when the process was killed (a timeout). */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Default limit on one run of the tool, in milliseconds. */
export const DEFAULT_OPA_TIMEOUT_MS = 120_000;

/**
 * Runs `opa ARGS…` in a child process and resolves with its exit code and output, whatever
 * the code. Output beyond 64 MiB is cut off.
 * @throws Error when the tool cannot be started at all
 */
export function runOpa(
  opa: string,
  args: readonly string[],
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<OpaRun> {
  return new Promise((resolve, reject) => {
    execFile(
      opa,
      [...args],
      {
        cwd: options.cwd,
        timeout: options.timeoutMs ?? DEFAULT_OPA_TIMEOUT_MS,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
        env: { ...process.env, OPA_TELEMETRY: 'false' },
      },
      (error, stdout, stderr) => {
        if (error !== null && typeof (error as NodeJS.ErrnoException).code === 'string') {
          reject(new Error(`cannot run ${opa}: ${error.message}`));
          return;
        }
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
