/**
 * The parts of the WebAssembly JavaScript API this adapter uses. Node has the API; the
 * TypeScript libraries this project compiles with (ES2022 and @types/node 20) do not
 * declare it.
 */
declare namespace WebAssembly {
  interface Module {
    readonly __brand?: 'WebAssembly.Module';
  }
  interface Memory {
    readonly buffer: ArrayBuffer;
    grow(delta: number): number;
  }
  interface Instance {
    readonly exports: Record<string, unknown>;
  }
  interface WebAssemblyInstantiatedSource {
    readonly instance: Instance;
    readonly module: Module;
  }
  interface MemoryDescriptor {
    initial: number;
    maximum?: number;
  }
  function compile(bytes: ArrayBufferView | ArrayBuffer): Promise<Module>;
}
