// The runaway suite on the workers engine.
process.env.PARMAP_WASM_BUILD = 'workers';
await import('./runaway.test.mjs');
