// The runaway suite on the single engine.
process.env.PARMAP_WASM_BUILD = 'single';
await import('./runaway.test.mjs');
