// errors.js - the package's named errors.
//
// ParmapError: an item's function failed (or its value could not cross to a
// worker). `index` is the item's position, `message` the original message,
// `cause` the original error rebuilt on this side (same class for built-in
// errors, same stack text, own `cause`, `errors` and properties) or the
// thrown value itself when it was not an Error, `code` 'EITEM'.
// AbortError: the call was aborted through its AbortSignal (a DOMException
// named 'AbortError', like fetch's, with the signal's reason as `cause`).

export class ParmapError extends Error {
  constructor(message, opts = {}) {
    const { index, cause, code = 'EITEM', itemCode = 1 } = opts;
    // `cause` given, even undefined (a thrown undefined), is the cause.
    super(message, 'cause' in opts ? { cause } : undefined);
    this.name = 'ParmapError';
    this.index = index;
    this.code = code;
    // The item's numeric code, as in the C API: -1 (EINVAL) when the item
    // does not fit its star/kwstar mode, the thrown error's numeric `code`
    // when it has one, else 1.
    this.itemCode = itemCode;
  }
}

/** A ParmapError from the fields a worker encoded (runtime.js pmwItemError).
 * Its cause: the thrown value itself when it was not an Error (a string,
 * a number, an object, null, undefined), else the error rebuilt (class,
 * stack, own cause, AggregateError's errors, own properties). */
export function itemError(pmw, fields) {
  const f = fields && fields.pmwFields ? fields.pmwFields : fields;
  let cause;
  if ('thrown' in f) cause = f.thrown;
  else {
    // The closure check's message replaced a ReferenceError's: the cause is the original.
    cause = pmw.rebuildError(f.original ? { ...f, name: f.original.name, message: f.original.message } : f);
    delete cause.pmwFields;
  }
  // A result that did not fit in the heap: ENOMEM (C's item code).
  const itemCode = f.errorCode === 'ENOMEM' ? STATUS.ENOMEM : f.shape ? STATUS.EINVAL : typeof f.code === 'number' ? f.code : 1;
  const e = new ParmapError(f.message, { index: f.index, cause, itemCode, code: f.errorCode || 'EITEM' });
  // A plain function returned a promise where items run synchronously:
  // lib/map.js runs the call again on the workers engine.
  if (f.async) Object.defineProperty(e, 'pmwAsync', { value: true });
  return e;
}

export function abortError(signal) {
  const reason = signal ? signal.reason : undefined;
  let e;
  if (typeof DOMException === 'function') e = new DOMException('parmap: the operation was aborted', 'AbortError');
  else { e = new Error('parmap: the operation was aborted'); e.name = 'AbortError'; }
  if (reason !== undefined) {
    try { Object.defineProperty(e, 'cause', { value: reason, configurable: true, writable: true }); } catch { /* frozen */ }
  }
  return e;
}

/**
 * The C statuses by name: the core's (parmap.h PM_STATUS_MAP) and the
 * glue's (src/protocol.h PMW_STATUS_MAP: ESOURCE, a stream whose source
 * threw). Filled from the module's own table when it loads (loader.js
 * setStatuses), so a status C gains appears here by itself; everything that
 * reads it runs after the load.
 */
export const STATUS = {};

/** loader.js: the statuses of the module just loaded (pmw.P.status). */
export function setStatuses(table) {
  for (const k of Object.keys(STATUS)) delete STATUS[k];
  Object.assign(STATUS, table);
}

export function statusError(M, status, what) {
  const name = Object.keys(STATUS).find((k) => STATUS[k] === status) || 'UNKNOWN';
  const e = new Error(`parmap: ${what} failed: ${name} (${status})`);
  e.code = name;
  return e;
}
