// pipeline.mjs - parmapper's "concurrency + parallel" recipe in Node:
// a chain of async generators and imap stages where every stage runs at once.
//
//   load (async, I/O-like) -> preprocess (main thread) -> imap(expensive)
//   -> postprocess (main thread) -> consume
//
//   node examples/pipeline.mjs [items]
import { imap, info } from 'parmap-wasm';

const N = Number(process.argv[2] || 20000);

// An async source: lines arriving over time (a file, a socket, a database).
async function* load(n) {
  for (let i = 0; i < n; i++) {
    if (i % 1000 === 0) await new Promise((r) => setTimeout(r, 1)); // I/O latency
    yield `${i},${(i * 7919) % 1000}`;
  }
}

// Cheap steps stay on the main thread, as plain async generators.
async function* preprocess(lines) {
  for await (const line of lines) {
    const [id, seed] = line.split(',').map(Number);
    yield { id, seed };
  }
}

async function* postprocess(results) {
  for await (const r of results) if (r.score % 3 === 0) yield r;
}

// The expensive step runs on the worker threads. It is shipped by source, so
// it is self-contained; its parameter comes in through kwargs.
function expensive({ id, seed }, { rounds }) {
  let x = seed + 1;
  for (let i = 0; i < rounds; i++) x = (x * 1103515245 + 12345) % 2147483648;
  return { id, score: x % 1000 };
}

const { build, threads } = await info();
const t0 = performance.now();
let kept = 0;
const data = postprocess(imap(expensive, preprocess(load(N)), { kwargs: { rounds: 2000 }, total: N }));
for await (const r of data) kept += r ? 1 : 0;
console.log(`${N} items through load -> preprocess -> imap(expensive) -> postprocess: ` +
  `${kept} kept in ${(performance.now() - t0).toFixed(0)} ms (${build} build, ${threads} threads)`);
