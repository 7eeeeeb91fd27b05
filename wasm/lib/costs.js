// costs.js - what recent functions cost per item, carried from one call to
// the next (as joblib's auto batching carries its estimate from one dispatch
// to the next), and the rule both multi-thread engines take from it: work
// that would take under ONE_CHUNK_MS on one thread stays on one (a second
// thread costs a cross-thread hop, ~0.05-0.15 ms here, more than it saves).
// A bigger call still spreads from the start. The estimate is a guess: a
// function whose cost per item changes a lot between calls (same source) can
// send one small call to one thread, and is measured again by it.

export const ONE_CHUNK_MS = 0.5;
const KEPT = 64;
const costs = new Map();   // key -> ms per item, latest use last

/** The key of a function (by its source) or of a kernel (by its name). */
export const fnCostKey = (src) => `f:${src}`;
export const kernelCostKey = (name) => `k:${name}`;

/** ms per item measured by an earlier call, or -1. */
export function knownCost(key) {
  return costs.has(key) ? costs.get(key) : -1;
}

/** Whether n items of cost ms each are one thread's work. */
export function oneThreadsWork(n, cost) {
  return cost >= 0 && n * cost < ONE_CHUNK_MS;
}

export function noteCost(key, msPerItem) {
  costs.delete(key);
  if (costs.size >= KEPT) costs.delete(costs.keys().next().value);
  costs.set(key, msPerItem);
}
