// The memory suite on the single engine.
process.env.PARMAP_WASM_BUILD = 'single';
await import('./memory.test.mjs');
