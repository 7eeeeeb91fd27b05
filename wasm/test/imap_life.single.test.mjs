// The imap lifecycle suite on the single-thread build.
process.env.PARMAP_WASM_BUILD = 'single';
await import('./imap_life.test.mjs');
