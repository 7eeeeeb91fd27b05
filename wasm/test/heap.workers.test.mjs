// The heap suite on the workers engine (one single-thread instance per worker).
process.env.PARMAP_WASM_BUILD = 'workers';
await import('./heap.test.mjs');
