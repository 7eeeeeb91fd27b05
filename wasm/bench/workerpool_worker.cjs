// workerpool's worker script: the same task functions as piscina_worker.mjs.
const workerpool = require('workerpool');
workerpool.worker({
  double: (x) => x * 2,
  repeatLen: (o) => o.s.repeat(o.n).length,
});
