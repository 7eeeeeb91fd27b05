// The imap suite on the single-thread build.
process.env.PARMAP_WASM_BUILD = 'single';
process.env.PARMAP_LONG_STREAM = process.env.PARMAP_LONG_STREAM_SINGLE || '1e6';
await import('./imap.test.mjs');
