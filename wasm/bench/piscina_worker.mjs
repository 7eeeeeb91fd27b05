// A piscina / workerpool task: one item, or a hand-made batch of items.
export function double(x) { return x * 2; }
export function doubleBatch(xs) { const out = new Array(xs.length); for (let i = 0; i < xs.length; i++) out[i] = xs[i] * 2; return out; }
export function repeatLen(o) { return o.s.repeat(o.n).length; }
export function repeatLenBatch(os) { const out = new Array(os.length); for (let i = 0; i < os.length; i++) out[i] = os[i].s.repeat(os[i].n).length; return out; }
export async function sleepDouble(x) { await new Promise((r) => setTimeout(r, 1)); return x * 2; }
export default function ({ fn, arg }) {
  switch (fn) {
    case 'double': return double(arg);
    case 'doubleBatch': return doubleBatch(arg);
    case 'repeatLen': return repeatLen(arg);
    case 'repeatLenBatch': return repeatLenBatch(arg);
    case 'sleepDouble': return sleepDouble(arg);
  }
  throw new Error('unknown ' + fn);
}
