// parmap-wasm for require(): the CommonJS bundle that scripts/build-bundles.mjs
// makes from index.js and lib/ (at build and pack time, like the .wasm).
// It has its own state: a program that both require()s and imports the
// package gets two independent pools.
'use strict';
module.exports = require('./dist/index.cjs');
