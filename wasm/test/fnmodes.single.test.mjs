// The fnmodes suite on the single-thread engine.
process.env.PARMAP_WASM_BUILD = 'single';
await import('./fnmodes.test.mjs');
