// imap_1e8.mjs - the long stream: N items (default 1e8) from an async
// generator through imap, with the RSS sampled along the way. Prints JSON
// lines. test/imap.test.mjs runs it (1e8, both builds) and checks the output.
//
//   node bench/imap_1e8.mjs [N]
import { imap, info } from '../index.js';

const N = Number(process.argv[2] || 1e8);
async function* count(n) { for (let i = 0; i < n; i++) yield i; }
const mb = () => +(process.memoryUsage().rss / 2 ** 20).toFixed(1);
const samples = [];
const t0 = performance.now();
let n = 0, sum = 0;
for await (const x of imap((v) => v & 7, count(N))) {
  sum += x;
  if (++n % (N / 10) === 0) samples.push({ items: n, rss_mb: mb(), s: +((performance.now() - t0) / 1000).toFixed(1) });
}
const s = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ bench: 'imap async generator', items: N, ok: n === N && sum === (N / 8) * 28, seconds: +s.toFixed(1),
  us_per_item: +(s * 1e6 / N).toFixed(3), rss_mb: samples, build: (await info()).build }));
