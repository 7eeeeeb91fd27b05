// The memory suite on the workers engine.
process.env.PARMAP_WASM_BUILD = 'workers';
await import('./memory.test.mjs');
