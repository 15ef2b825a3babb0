/**
 * `opa`: access control with Rego policies compiled to WebAssembly and evaluated
 * in-process (Mixer's `opa` adapter, with its parameters unchanged). See README.md for its
 * configuration; handler.ts for compiling, reloading and deciding; decision.ts for what a
 * policy may answer.
 */
import { AUTHORIZATION, CHECKNOTHING } from '../../../templates';
import { defineAdapter } from '../../contract';
import { OPA_CONFIG, validateOpaConfig, type OpaConfig } from './config';
import { createOpaHandler } from './handler';

export const OPA = defineAdapter<OpaConfig>({
  name: 'opa',
  description:
    'Access control with Rego policies compiled to WebAssembly, evaluated in-process, hot-reloaded',
  templates: [AUTHORIZATION.name, CHECKNOTHING.name],
  config: OPA_CONFIG,
  validate: validateOpaConfig,
  build: createOpaHandler,
});

export { OPA_CONFIG, validateOpaConfig, entrypointOf, REGO_VERSIONS } from './config';
export type { OpaConfig } from './config';
export { OpaHandler, POLL_INTERVAL_MS, RELOAD_DELAY_MS } from './handler';
export type { OpaStats, OpaDecisionCounters } from './handler';
export { compileRego, PolicyCompileError, formatCompileProblem } from './compiler';
export type { CompileProblem, RegoModule, RegoVersion } from './compiler';
export { interpretResult, REJECTED_MESSAGE } from './decision';
export type { Decision, Interpretation } from './decision';
export { createBuiltins, PROVIDED_BUILTINS, SDK_BUILTINS } from './builtins';
export {
  findOpa,
  requireOpa,
  runOpa,
  OpaMissingError,
  OPA_VERSION,
  OPA_PATH_ENV,
  DEFAULT_OPA_PATH,
  OPA_INSTALL_HINT,
} from './opa-cli';
export {
  readPolicySources,
  PolicySourceError,
  OPA_IGNORE_PATTERNS,
  isPolicyDirEntry,
} from './policy-sources';
export { WasmPolicy } from './wasm-policy';
export { readBundle } from './bundle-archive';
export { authorizationInput, attributesInput, attributeJson } from './policy-input';
