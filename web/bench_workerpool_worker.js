// bench_workerpool_worker.js - the worker script of bench.mjs's peer: a
// workerpool web worker (a classic script, since workerpool's browser build is
// UMD, loaded from the one node_modules file serve.mjs serves) whose one
// method maps a hand-made batch of objects with the function parmap is given,
// written as wasm/bench/piscina_worker.mjs's repeatLenBatch (the Node bench's
// hand-batched peer), so both benches time the same loop.
importScripts('/vendor/workerpool.min.js');

function repeatLenBatch(os) {
  const out = new Array(os.length);
  for (let i = 0; i < os.length; i++) out[i] = os[i].s.repeat(os[i].n).length;
  return out;
}

self.workerpool.worker({ repeatLenBatch });
