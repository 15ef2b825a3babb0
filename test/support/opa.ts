/**
 * Support for the opa adapter's tests: the real OPA compiler (they never pass without it:
 * a missing compiler fails them with the command that installs it), configuration text for
 * an `authorization` rule, the RBAC example policy, and temporary folders.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { findOpa, OPA_INSTALL_HINT } from '../../adapters/acl/opa';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

/** The RBAC example policy: rbac.rego, data.json, rbac_test.rego, rbac.decisions.yaml. */
export const RBAC_DIR = path.join(REPO_ROOT, 'examples', 'opa', 'rbac');

/**
 * The `opa` executable the adapter would use.
 * @throws Error naming the command that installs it, when it is missing
 */
export function requireOpaCompiler(): string {
  const lookedAt: string[] = [];
  const opa = findOpa(undefined, lookedAt);
  if (opa === undefined) {
    throw new Error(
      `these tests compile Rego with the real OPA compiler, which is missing (looked at ${lookedAt.join(', ')}); ${OPA_INSTALL_HINT}`,
    );
  }
  return opa;
}

/** The instance every test rule uses: who from headers, what from the request. */
export const AUTHORIZATION_PARAMS = {
  subject: {
    user: 'request.headers["x-user"] | ""',
    groups: 'request.headers["x-group"] | ""',
  },
  action: {
    namespace: 'destination.namespace | "default"',
    service: 'destination.service.host | ""',
    method: 'request.method | ""',
    path: 'request.path | ""',
  },
};

/**
 * A handler `authz` of the opa adapter with `params`, an instance `request` of `template`
 * (`instanceParams`, default AUTHORIZATION_PARAMS for authorization), and a rule sending
 * every request to them. YAML accepts JSON, which keeps the text independent of indentation.
 */
export function opaConfig(
  params: Record<string, unknown>,
  options: { template?: 'authorization' | 'checknothing'; instanceParams?: unknown; match?: string } = {},
): string {
  const template = options.template ?? 'authorization';
  const instanceParams = options.instanceParams ?? (template === 'authorization' ? AUTHORIZATION_PARAMS : {});
  return [
    `apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: authz, namespace: istio-system }
spec:
  compiledAdapter: opa
  params: ${JSON.stringify(params)}
`,
    `apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: request, namespace: istio-system }
spec:
  compiledTemplate: ${template}
  params: ${JSON.stringify(instanceParams)}
`,
    `apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: authz, namespace: istio-system }
spec:
${options.match === undefined ? '' : `  match: ${JSON.stringify(options.match)}\n`}  actions:
  - handler: authz
    instances: [request]
`,
  ].join('---\n');
}

/** Temporary folders, removed by `removeAll`. */
export class TempDirs {
  private readonly dirs: string[] = [];

  make(prefix = 'switchboard-opa-'): string {
    const dir = mkdtempSync(path.join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  removeAll(): void {
    for (const dir of this.dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

/** Polls `condition` every 10 ms until it holds. @throws Error naming `what` after `timeoutMs` */
export async function eventually(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
