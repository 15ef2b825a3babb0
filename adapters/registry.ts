/**
 * The adapters a server knows. A registry is an object per server (never a module
 * global), so each test can have its own; the built-in adapters are listed in one
 * inventory (inventory.ts) and registered explicitly.
 */
import type { AdapterInfo } from './contract';

export class AdapterRegistry {
  private readonly adapters = new Map<string, AdapterInfo>();

  /** Adds an adapter. @throws Error when one with the same name is registered already */
  register<Config>(adapter: AdapterInfo<Config>): this {
    if (this.adapters.has(adapter.name)) throw new Error(`adapter ${adapter.name} is registered already`);
    this.adapters.set(adapter.name, adapter as AdapterInfo<unknown>);
    return this;
  }

  get(name: string): AdapterInfo | undefined {
    return this.adapters.get(name);
  }

  names(): string[] {
    return [...this.adapters.keys()].sort();
  }
}
