// worker-node.js - the entry of a `workers`-engine worker in Node: gives
// lib/worker.js its message port and the CommonJS glue, which it must not
// import itself (it is also bundled for browsers, where `node:` modules do
// not exist), then starts it.
import { parentPort } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';

const require = createRequire(import.meta.url);
globalThis.pmwWorkerHost = {
  port: parentPort,
  loadFactory: (dist) => require(fileURLToPath(new URL('node/parmap-st.js', dist))),
  fs,   // what items print is written synchronously (js/chunk.js pmwSyncStdio)
};
import('./worker.js');
