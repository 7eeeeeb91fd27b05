// workerpool's worker script: the same task functions as piscina_worker.mjs.
const workerpool = require('workerpool');
workerpool.worker({
  double: (x) => x * 2,
  repeatLen: (o) => o.s.repeat(o.n).length,
  sleepDouble: async (x) => { await new Promise((r) => setTimeout(r, 1)); return x * 2; },
});
