// The vectors on the single-thread build.
process.env.PARMAP_WASM_BUILD = 'single';
await import('./vectors.test.mjs');
