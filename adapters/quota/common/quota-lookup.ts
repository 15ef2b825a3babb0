/**
 * Which configured quota serves an instance: by its full name
 * (`requestcount.instance.istio-system`, as Mixer's memquota looked limits up), else by its
 * short name (`requestcount`). Found once per instance name and remembered.
 */
export class QuotaLookup<Quota> {
  private readonly byInstance = new Map<string, Quota>();

  constructor(
    private readonly byName: ReadonlyMap<string, Quota>,
    /** For messages: `memquota handler quota.handler.istio-system`. */
    private readonly owner: string,
  ) {}

  /** @throws Error naming the instance, the quotas configured and the fix, when none serves it */
  of(instanceName: string): Quota {
    const known = this.byInstance.get(instanceName);
    if (known !== undefined) return known;
    const dot = instanceName.indexOf('.');
    const shortName = dot === -1 ? instanceName : instanceName.slice(0, dot);
    const found = this.byName.get(instanceName) ?? this.byName.get(shortName);
    if (found === undefined) {
      const names = [...this.byName.keys()].join(', ');
      throw new Error(
        `${this.owner}: no quota is configured for instance ${instanceName} ` +
          `(configured: ${names}); add a quota named ${instanceName} or ${shortName} to its params`,
      );
    }
    this.byInstance.set(instanceName, found);
    return found;
  }

  /** Every configured quota. */
  values(): IterableIterator<Quota> {
    return this.byName.values();
  }

  clear(): void {
    this.byInstance.clear();
  }
}
