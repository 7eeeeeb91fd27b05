// The imap lifecycle suite on the workers engine.
process.env.PARMAP_WASM_BUILD = 'workers';
await import('./imap_life.test.mjs');
