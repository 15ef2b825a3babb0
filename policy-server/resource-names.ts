/**
 * Names of configuration resources, as Mixer resolved them. A resource's fully qualified
 * name is `name.kind.namespace`; a reference in a rule may be the short `name` (same
 * namespace, any kind of its sort), `name.kind` (same namespace) or `name.kind.namespace`.
 * Kinds of a sort: `handler` or an adapter's name (Mixer's older per-adapter kinds);
 * `instance` or a template's name (Mixer's older per-template kinds).
 */

/** The fully qualified name of a resource. */
export function qualifiedName(name: string, kind: string, namespace: string): string {
  return `${name}.${kind}.${namespace}`;
}

/** A reference parsed: the name, and the kind and namespace when given. */
export interface ParsedReference {
  readonly name: string;
  readonly kind?: string;
  readonly namespace?: string;
}

export function parseReference(reference: string): ParsedReference {
  const parts = reference.split('.');
  if (parts.length === 1) return { name: reference };
  if (parts.length === 2) return { name: parts[0]!, kind: parts[1]! };
  return { name: parts[0]!, kind: parts[1]!, namespace: parts.slice(2).join('.') };
}

/** Entries of one sort (handlers or instances), findable by any form of reference. */
export class NameTable<
  T extends { readonly name: string; readonly kind: string; readonly namespace: string },
> {
  private readonly byQualifiedName = new Map<string, T>();
  private readonly byShortName = new Map<string, T[]>();

  add(entry: T): boolean {
    const key = qualifiedName(entry.name, entry.kind, entry.namespace);
    if (this.byQualifiedName.has(key)) return false;
    this.byQualifiedName.set(key, entry);
    const short = `${entry.name}/${entry.namespace}`;
    const list = this.byShortName.get(short) ?? [];
    list.push(entry);
    this.byShortName.set(short, list);
    return true;
  }

  /**
   * Resolves a reference made from `namespace`. Undefined when nothing matches; an array of
   * more than one entry when a short name is ambiguous (the same name under two kinds).
   */
  resolve(reference: string, namespace: string): T | T[] | undefined {
    const parsed = parseReference(reference);
    if (parsed.kind === undefined) {
      const list = this.byShortName.get(`${parsed.name}/${namespace}`);
      if (list === undefined) return undefined;
      return list.length === 1 ? list[0] : list;
    }
    return this.byQualifiedName.get(qualifiedName(parsed.name, parsed.kind, parsed.namespace ?? namespace));
  }

  values(): IterableIterator<T> {
    return this.byQualifiedName.values();
  }
}
