// heap.js - typed arrays that live in the WebAssembly heap: heapArray().
//
// mapKernel copies an ordinary typed array into the heap and its result out
// again. A HeapArray is memory in the heap itself, so mapKernel can run over
// it and write into it in place: nothing is copied either way.
//
// Memory growth: the heap may grow during any call (it is malloc'd memory).
//  - threaded build: the memory is a SharedArrayBuffer; growing it makes a
//    new, longer buffer object, but views of the old one stay valid and
//    alias the same bytes. A view keeps working.
//  - single-thread build: growing detaches the old ArrayBuffer: every view
//    of it reads as empty (length 0) from then on.
// So the handle, not a view, is what the caller keeps: `.array` rebuilds the
// view whenever the old one was detached, and mapKernel resolves to a view
// made after the call.
//
// Lifetime: free() releases the memory once (a second free() does nothing).
// Freed while a mapKernel call uses it, the memory is released when that
// call ends. After terminate() the module the array lived in is gone: the
// handle is dead (its .array and mapKernel refuse it; free() does nothing).

import { runtime, currentRuntime } from './loader.js';

export const HEAP_TYPES = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array,
  Uint32Array, Float32Array, Float64Array];

// handle -> its private state; view handed out -> its handle (so that a view
// passed back to mapKernel is recognised as heap memory).
const states = new WeakMap();
const owners = new WeakMap();

/** A typed array in the WebAssembly heap (made by heapArray()). */
export class HeapArray {
  constructor() {
    throw new TypeError('HeapArray: use heapArray(type, length) to allocate one');
  }

  /** The typed array constructor (Float64Array...). */
  get type() { return st(this).type; }
  /** Elements. */
  get length() { return st(this).length; }
  get byteLength() { return st(this).length * st(this).type.BYTES_PER_ELEMENT; }
  /** true after free() (or terminate()). */
  get freed() { const s = st(this); return s.freed || s.rt !== currentRuntime(); }

  /**
   * A view of the memory. Valid until the heap grows on the single-thread
   * build (any call may grow it): read `.array` again after an await
   * rather than keeping the view. On the threaded build it is a view of a
   * SharedArrayBuffer (some browser APIs refuse those, e.g. ImageData:
   * copy with .slice() for them).
   */
  get array() {
    const s = live(this, 'HeapArray.array', 'this heap array');
    if (!s.view || s.view.length !== s.length) s.view = makeView(s);
    return s.view;
  }

  /** Release the memory (at the end of a mapKernel call still using it).
   * Safe to call again: it frees once. Views of it must not be used after. */
  free() {
    const s = st(this);
    if (s.freed) return;
    s.freed = true;
    s.view = null;
    if (s.busy === 0) release(s);
  }

  get [Symbol.toStringTag]() { return 'HeapArray'; }
}

function st(h) {
  const s = states.get(h);
  if (!s) throw new TypeError('HeapArray: not a heap array made by heapArray()');
  return s;
}

function makeView(s) {
  const end = s.ptr + s.length * s.type.BYTES_PER_ELEMENT;
  const v = new s.type(s.rt.pmw.heap(end).U8.buffer, s.ptr, s.length);
  owners.set(v, s.handle);
  return v;
}

function release(s) {
  // Only into the module it came from, and only while that one is loaded.
  if (s.rt === currentRuntime()) s.rt.M._free(s.ptr);
  if (s.ptr) s.rt.heapArrays--;
  s.ptr = 0;
}

/** The state of a live heap array, else a TypeError: `what` names the
 * argument or option in the message. */
function live(h, api, what) {
  const s = st(h);
  if (s.freed) throw new TypeError(`${api}: ${what} was freed (heap array of ${s.length} ${s.type.name})`);
  if (s.rt !== currentRuntime())
    throw new TypeError(`${api}: ${what} belongs to a module that is no longer loaded (allocated before ` +
      'terminate(), or by the other build): allocate it again with heapArray()');
  return s;
}

/**
 * heapArray(type, lengthOrValues) -> Promise<HeapArray>: `type` one of
 * Int8Array ... Float64Array (no BigInt arrays); a length (zero-filled), or
 * an array-like / iterable of numbers copied in once.
 */
export async function heapArray(type, lengthOrValues) {
  if (!HEAP_TYPES.includes(type))
    throw new TypeError(`heapArray: type must be one of ${HEAP_TYPES.map((t) => t.name).join(', ')}, got ${
      typeof type === 'function' ? type.name || 'a function' : typeof type}`);
  let values = null, length;
  if (typeof lengthOrValues === 'number') {
    length = lengthOrValues;
  } else if (lengthOrValues !== null && typeof lengthOrValues === 'object' &&
             (typeof lengthOrValues.length === 'number' || typeof lengthOrValues[Symbol.iterator] === 'function')) {
    values = ArrayBuffer.isView(lengthOrValues) || Array.isArray(lengthOrValues) ? lengthOrValues : Array.from(lengthOrValues);
    length = values.length;
  } else {
    throw new TypeError(`heapArray: length must be a number or an array of values, got ${
      lengthOrValues === null ? 'null' : typeof lengthOrValues}`);
  }
  const max = Math.floor(2 ** 31 / type.BYTES_PER_ELEMENT) - 1;
  if (!Number.isInteger(length) || length < 0 || length > max)
    throw new RangeError(`heapArray: length must be an integer from 0 to ${max}, got ${length}`);
  const rt = await runtime();
  const bytes = length * type.BYTES_PER_ELEMENT;
  const ptr = rt.M._malloc(Math.max(bytes, 8)) >>> 0;
  if (!ptr) throw new RangeError(`heapArray: out of WebAssembly memory for ${bytes} bytes`);
  const h = Object.create(HeapArray.prototype);
  const s = { handle: h, rt, ptr, type, length, view: null, freed: false, busy: 0 };
  rt.heapArrays++;   // the module is not recycled while it holds heap arrays (loader.js)
  states.set(h, s);
  const v = makeView(s);
  try {
    if (values) v.set(values); else v.fill(0);   // malloc'd memory may hold old data
  } catch (e) {
    rt.M._free(ptr);   // e.g. a BigInt among the values
    rt.heapArrays--;
    throw new TypeError(`heapArray: the values do not fit a ${type.name}: ${e.message}`);
  }
  s.view = v;
  return h;
}

/**
 * For mapKernel: the state of a heap array given as a HeapArray or as a view
 * handed out for one, else null (an ordinary typed array). A TypeError naming
 * `what` when it was freed, belongs to an unloaded module, or is a view the
 * heap's growth detached (it would otherwise pass as an empty typed array).
 */
export function heapOf(x, api, what) {
  if (x instanceof HeapArray) return live(x, api, what);
  const h = ArrayBuffer.isView(x) ? owners.get(x) : undefined;
  if (!h) return null;
  const s = live(h, api, what);
  if (x.length !== s.length)
    throw new TypeError(`${api}: ${what} is a stale view of a heap array (the heap grew, which detached it): ` +
      'pass the HeapArray itself, or read its .array again');
  return s;
}

/** Pin arrays for the length of a call (free() waits for the unpin). */
export function pin(s) { s.busy++; }
export function unpin(s) {
  if (--s.busy === 0 && s.freed && s.ptr) release(s);
}

/** A fresh view of a heap array's memory (mapKernel's result with `out`). */
export function freshView(s) {
  return makeView(s);
}
