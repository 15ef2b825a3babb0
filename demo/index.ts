// Public surface of demo/: the demo mesh that `npm start` runs (see mesh-demo.ts).
export { startMeshDemo } from './mesh-demo';
export type { MeshDemo, MeshDemoOptions } from './mesh-demo';
export { EXAMPLE_PORTS } from './mesh-layout';
export { SCRIPT, outcomeOf } from './traffic';
