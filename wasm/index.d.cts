// Types of parmap-wasm for require() (index.cjs): the same as index.d.ts, kept identical by test/cjs.test.mjs.

/** Progress of a call, counted in items. */
export interface Progress {
  done: number;
  /** Items expected: the input's length (parmap, mapKernel) or opts.total (imap); null when unknown. */
  total: number | null;
  failed: number;
  /** Seconds since the start. */
  elapsed: number;
  /** Items per second since the start. */
  rate: number;
  /** Estimated seconds left; null when total is unknown. */
  eta: number | null;
}

export interface MapOptions {
  /** Threads for this call (default: the pool size, cpuCount()). Ignored by the single-thread build. */
  threads?: number;
  /** Items per chunk; 0 or absent: automatic (chunks sized by measuring them). */
  chunksize?: number;
  /** true (default): results in input order; false: in completion order. */
  ordered?: boolean;
  /** false (default): fn(item, ...args); true: fn(...item, ...args); null: fn(...args) (the item is not passed). */
  star?: boolean | null;
  /** Each item carries its own keywords: [item, kwvals] (or kwvals alone with star: null). */
  kwstar?: boolean;
  /** Positional arguments appended after the item's. */
  args?: readonly unknown[];
  /** Keywords: with kwargs or kwstar, fn gets one extra last argument, the merged keyword object. */
  kwargs?: Record<string, unknown>;
  /** 'raise' (default): the first failure rejects and cancels the rest; 'return': ParmapErrors in place. */
  exception?: 'raise' | 'return';
  /** imap: expected number of items, for progress. */
  total?: number;
  /** Called on the main thread about 10 times a second while the work runs, and once at the end. */
  onProgress?: (p: Progress) => void;
  /** Aborting rejects with an AbortError at once; workers still running the call's chunks are terminated after a short grace period. */
  signal?: AbortSignal;
  /** Milliseconds per item (> 0): an item over it fails with code 'ETIMEOUT', its worker is terminated and replaced. */
  timeout?: number;
  /** When fn returns promises (async functions, module mode): items each worker keeps in flight (default 16). */
  concurrency?: number;
}

/**
 * Module mode: every worker imports the ES module at `module` and calls its
 * export `export` (default 'default'). Nothing is evaluated from a string,
 * so it works under a Content-Security-Policy without 'unsafe-eval'. Runs
 * on the workers engine (also on threaded and single, on a side pool).
 * `module`: a URL, an absolute URL string, in browsers a string relative to
 * the page, in Node an absolute path.
 */
export interface ModuleFunction {
  module: URL | string;
  export?: string;
}

/** What parmap / imap run: a self-contained function shipped by its
 * source (sync or async: a promise is awaited in its worker), or an export
 * of an ES module (module mode). */
export type MapFunction<R> = ((...args: any[]) => R | PromiseLike<R>) | ModuleFunction;

/** An item's function failed (or its value could not be sent). */
export class ParmapError extends Error {
  name: 'ParmapError';
  /** The item's position in the input. */
  index: number;
  /** 'EITEM' (the function threw), 'ETIMEOUT' (over the timeout), 'ECRASH' (its worker died), 'ECANCELED' (terminate()) */
  code: 'EITEM' | 'ETIMEOUT' | 'ECRASH' | 'ECANCELED' | string;
  /** -1 when the item does not fit its star/kwstar mode; the thrown error's numeric code; else 1. */
  itemCode: number;
  /**
   * The original error, rebuilt on this side (same class for built-in errors,
   * same stack text, its own cause, an AggregateError's errors, its own
   * enumerable properties such as code or errno), or the thrown value itself
   * when it was not an Error (a string, number, object, null, undefined).
   */
  cause?: unknown;
}

/**
 * Run fn over every item on the worker threads. Resolves to the results
 * (ParmapError objects in place of failed items with exception: 'return').
 * fn is shipped by its source: it must be self-contained (no closure over
 * outer variables: pass them through args/kwargs). It may be async (awaited
 * in the worker, opts.concurrency in flight per worker), or module mode.
 * Where eval is refused (CSP), a function by source rejects with an
 * EvalError pointing to module mode.
 */
export function parmap<T = unknown, R = unknown>(
  fn: MapFunction<R>,
  items: Iterable<T> | ArrayLike<T>,
  opts?: MapOptions,
): Promise<Array<R | ParmapError>>;

/**
 * A parallel map over an iterable or async iterable, consumed with
 * for await. Semi-lazy with a bounded window (flat memory on endless
 * streams); starts at the first next().
 */
export function imap<T = unknown, R = unknown>(
  fn: MapFunction<R>,
  items: Iterable<T> | AsyncIterable<T>,
  opts?: MapOptions,
): AsyncIterableIterator<R | ParmapError>;

export type KernelOutput = Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array |
  Uint32Array | Float32Array | Float64Array;

export type HeapArrayType = Int8ArrayConstructor | Uint8ArrayConstructor | Uint8ClampedArrayConstructor |
  Int16ArrayConstructor | Uint16ArrayConstructor | Int32ArrayConstructor | Uint32ArrayConstructor |
  Float32ArrayConstructor | Float64ArrayConstructor;

/**
 * A typed array in the WebAssembly heap, made by heapArray(): mapKernel
 * reads it in place as input and writes into it as `out`, with no copy.
 * Keep the handle, not a view: on the single-thread build the heap's growth
 * (any call may grow it) detaches earlier views; `.array` makes a new one.
 */
export class HeapArray<T extends KernelOutput = KernelOutput> {
  private constructor();
  /** The element type (Float64Array...). */
  readonly type: HeapArrayType;
  readonly length: number;
  readonly byteLength: number;
  /** true after free(), or once terminate() unloaded its module. */
  readonly freed: boolean;
  /**
   * A view of the memory (of a SharedArrayBuffer on the threaded build:
   * some APIs, e.g. ImageData, refuse those; copy with .slice()). Read it
   * again after an await. Throws a TypeError once freed.
   */
  readonly array: T;
  /** Release the memory (when a mapKernel call still uses it: when that call ends). A second call does nothing. */
  free(): void;
}

type ElementOf<C> = C extends Int8ArrayConstructor ? Int8Array : C extends Uint8ArrayConstructor ? Uint8Array :
  C extends Uint8ClampedArrayConstructor ? Uint8ClampedArray : C extends Int16ArrayConstructor ? Int16Array :
  C extends Uint16ArrayConstructor ? Uint16Array : C extends Int32ArrayConstructor ? Int32Array :
  C extends Uint32ArrayConstructor ? Uint32Array : C extends Float32ArrayConstructor ? Float32Array :
  C extends Float64ArrayConstructor ? Float64Array : never;

/**
 * Allocate a typed array in the WebAssembly heap (loads the module): zero-filled
 * when given a length, else a copy of the values. Free it with free().
 * TypeError for another type (BigInt arrays are not supported), RangeError
 * for a bad length or when the heap is full.
 */
export function heapArray<C extends HeapArrayType>(type: C, lengthOrValues: number | ArrayLike<number> | Iterable<number>):
  Promise<HeapArray<ElementOf<C>>>;

export interface KernelOptions {
  threads?: number;
  chunksize?: number;
  exception?: 'raise' | 'return';
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
  /**
   * A heap array the kernel writes its output into (no copy out): the
   * kernel's output type, input length x output elements per item. The
   * promise then resolves to a view of it.
   */
  out?: HeapArray;
  /** The kernel's own parameters by name (mandelbrot_row: width, height, maxIter, x0, y0, x1, y1). */
  [param: string]: unknown;
}

/**
 * Run a C kernel compiled into the module over a typed array, on the same
 * threads, with no JavaScript per item. mandelbrot_row: Int32Array of row
 * numbers -> Uint8ClampedArray of width * 4 RGBA bytes per row.
 * An ordinary typed array is copied into the heap once and the output out
 * once; a HeapArray input (or a view from its .array) is read in place, and
 * with `out` the output is written in place: no copy at all.
 * With exception: 'return', failed items' outputs are zero and the array has
 * a `failures` property: [{ index, code }].
 */
export function mapKernel(name: string, input: ArrayLike<number> | HeapArray, opts?: KernelOptions):
  Promise<KernelOutput & { failures?: Array<{ index: number; code: number }> }>;

export interface KernelInfo {
  name: string;
  input: string;
  output: string;
  params: Record<string, number>;
  doc: string;
}
export function listKernels(): Promise<KernelInfo[]>;

export interface Info {
  build: 'threaded' | 'workers' | 'single';
  /** Why this engine was chosen. */
  reason: string;
  threads: number;
  cpuCount: number;
  threadsSupported: boolean;
  workersSupported: boolean;
  crossOriginIsolated: boolean;
  environment: 'node' | 'browser';
}
/** Which build runs and with how many threads (loads the module). */
export function info(): Promise<Info>;

/** Stop the workers and forget the module (a later call loads it again). */
export function terminate(): Promise<void>;

/**
 * Before the first call: build 'auto' | 'threaded' | 'workers' | 'single', pool threads, baseURL of dist/
 * (relative: to the page, or in Node to the current directory). Throws a RangeError for a malformed baseURL.
 */
export function configure(opts: { build?: 'auto' | 'threaded' | 'workers' | 'single'; threads?: number; baseURL?: string | URL }): void;

/** CPUs this program may use. */
export function cpuCount(): number;
