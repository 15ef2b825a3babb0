/**
 * Configuration resources and snapshots: what the loader produces and the server runs on.
 * Resources are Kubernetes-style documents (`apiVersion`, `kind`, `metadata`, `spec`); at
 * this stage only their shape is checked. Rules, handlers and instances get their meaning
 * from the rule runtime, which builds on these snapshots.
 */

/** One resource of the configuration, as written, with where it was written. */
export interface ConfigResource {
  /** `apiVersion` as written, e.g. `config.istio.io/v1alpha2`. */
  readonly apiVersion: string;
  /** `kind` as written, e.g. `rule`, `handler`, `instance`, `attributemanifest`. */
  readonly kind: string;
  /** `metadata.name`; never empty. */
  readonly name: string;
  /**
   * `metadata.namespace`, or undefined when it is absent, null or empty (as in Kubernetes,
   * where an empty namespace means "not set"). No default is filled in here: which
   * namespace an unnamespaced resource belongs to is the rule runtime's decision.
   */
  readonly namespace: string | undefined;
  /** `spec` as plain data, deeply frozen; an empty object when the document has no spec. */
  readonly spec: Readonly<Record<string, unknown>>;
  /** The file the resource came from: the configuration directory joined with its relative path. */
  readonly file: string;
  /** The 1-based line where the resource's content starts in that file. */
  readonly line: number;
  /**
   * The 1-based line of the value at `path` (`spec.params.quotas[0].validDuration`; keys
   * may contain dots, such as attribute names), or of its nearest ancestor written in the
   * file when the path is not there.
   */
  lineOf(path: string): number;
}

/**
 * An immutable, complete configuration: every resource of every file, in file order and
 * then document order. A snapshot is either loaded whole or not at all.
 */
export interface ConfigSnapshot {
  /** Counts loads that succeeded: 1 for the first configuration, one more per reload. */
  readonly generation: number;
  /** The directory it was loaded from, as given; undefined for the built-in empty configuration. */
  readonly configDir: string | undefined;
  readonly resources: readonly ConfigResource[];
}

/** The configuration of a server started without a configuration directory: no resources. */
export function createEmptySnapshot(generation = 1): ConfigSnapshot {
  return Object.freeze({ generation, configDir: undefined, resources: Object.freeze([]) });
}
