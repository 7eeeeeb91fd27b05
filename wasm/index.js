// parmap-wasm: parallel map for Node and browsers on web-worker threads,
// driven by parmap's C core compiled to WebAssembly. See README.md.
export { parmap, mapKernel, listKernels } from './lib/map.js';
export { imap } from './lib/imap.js';
export { heapArray, HeapArray } from './lib/heap.js';
export { info, terminate, configure, cpuCount } from './lib/loader.js';
export { ParmapError } from './lib/errors.js';
