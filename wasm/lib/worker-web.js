// worker-web.js - the entry of dist/worker.js, the workers engine's worker
// that the browser bundle (dist/browser.mjs) starts: lib/worker.js with the
// single-thread glue included, so that a worker that has just started does
// not fetch and import the glue before it can instantiate (a cold page's
// first call waited ~5-8 ms for that). Bundlers building a page take
// lib/worker.js itself, which imports the glue by the URL the main thread
// gives it.
import createParmapST from '../dist/web/parmap-st.mjs';
import './worker.js';

globalThis.pmwWorkerGlue = createParmapST;
