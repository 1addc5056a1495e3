// CancellationScope, as in `@temporalio/workflow`, and the async context
// that makes `CancellationScope.current()` follow the code across `await`.
//
// The TypeScript SDK finds the current scope with Node's
// AsyncLocalStorage. The JS engine inside a Caisson component
// (SpiderMonkey in StarlingMonkey) has no async context, so the scope is
// carried by hand:
//
// * `CancellationScope.run` sets the current scope for the synchronous
//   part of its function, and restores the previous one when it returns;
// * `caisson build` rewrites every `await x` of the workflow's sources into
//   `__caisson_resume(await __caisson_suspend(x))` (tools/transpile.mjs):
//   `suspend` remembers the scope current at the `await`, `resume`
//   reinstates it when the function continues, whether `x` fulfilled or
//   rejected (so a `catch` block runs in the right scope too);
// * `Promise.prototype.then` callbacks, `queueMicrotask` and the
//   workflow's `setTimeout` run in the scope current when they were
//   registered.
//
// What is not followed: `for await` loops (the engine's iteration protocol
// cannot be intercepted), and code the build did not transpile.

import { CancelledFailure, IllegalStateError } from './failures.js';
import { msOptionalToNumber } from './duration.js';
import { nativeThen } from './natives.js';

let current; // the current CancellationScope (undefined before a run starts)
let sleepImpl = () => {
  throw new IllegalStateError('Workflow has not been properly initialized');
};

/** @internal The library's `sleep`, which `withTimeout` scopes use. */
export function registerSleepImplementation(fn) {
  sleepImpl = fn;
}

/** @internal Runs `fn` with `scope` current, restoring the previous scope. */
export function runInScope(scope, fn, ...args) {
  const previous = current;
  current = scope;
  try {
    return fn(...args);
  } finally {
    current = previous;
  }
}

/** @internal Wraps `fn` so it runs in the scope current now. */
export function bindScope(fn) {
  if (typeof fn !== 'function') return fn;
  const scope = current;
  return function boundToScope(...args) {
    return runInScope(scope, fn.bind(this), ...args);
  };
}

const NO_PARENT = Symbol('NO_PARENT');

export class CancellationScope {
  constructor(options) {
    this.timeout = msOptionalToNumber(options?.timeout, 'CancellationScope timeout');
    this.cancellable = options?.cancellable ?? true;
    this._cancelRequested = false;
    this.cancelRequested = new Promise((_, reject) => {
      this.reject = (err) => {
        this._cancelRequested = true;
        reject(err);
      };
    });
    // Avoid unhandled rejections.
    this.cancelRequested.catch(() => undefined);
    if (options?.parent !== NO_PARENT) {
      this.parent = options?.parent || CancellationScope.current();
      if (this.parent.cancellable) {
        this._cancelRequested = this.parent._cancelRequested;
        this.parent.cancelRequested.catch((err) => this.reject(err));
      }
      // A non-cancellable parent shields its children from cancellation
      // that reaches it (the SDK's NonCancellableScopesAreShieldedFromPropagation).
    }
  }

  /** True once cancellation was requested of a cancellable scope. */
  get consideredCancelled() {
    return this._cancelRequested && this.cancellable;
  }

  /** Runs `fn` in this scope (and, with a timeout, cancels the scope when it passes). */
  run(fn) {
    return runInScope(this, () => this.runInContext(fn));
  }

  async runInContext(fn) {
    let timerScope;
    if (this.timeout) {
      timerScope = new CancellationScope();
      runInScope(timerScope, () =>
        sleepImpl(this.timeout).then(
          () => this.cancel(),
          () => {
            // The timer was cancelled (the scope finished first).
          }
        )
      );
    }
    try {
      return await runInScope(this, fn);
    } finally {
      if (timerScope && !timerScope.consideredCancelled) timerScope.cancel();
    }
  }

  /** Requests cancellation of this scope and every cancellable scope in it. */
  cancel() {
    this.reject(new CancelledFailure('Cancellation scope cancelled'));
  }

  /** The scope the calling code runs in (the workflow's root scope by default). */
  static current() {
    if (current === undefined) throw new IllegalStateError('CancellationScope.current() may only be used from a Workflow Execution');
    return current;
  }

  static cancellable(fn) {
    return new this({ cancellable: true }).run(fn);
  }

  static nonCancellable(fn) {
    return new this({ cancellable: false }).run(fn);
  }

  static withTimeout(timeout, fn) {
    return new this({ cancellable: true, timeout }).run(fn);
  }
}

/** The workflow's outermost scope: a cancellation request cancels it. */
export class RootCancellationScope extends CancellationScope {
  constructor() {
    super({ cancellable: true, parent: NO_PARENT });
  }
  cancel() {
    this.reject(new CancelledFailure('Workflow cancelled'));
  }
}

/** @internal Makes `scope` current outside any function (the scheduler
 * does it before it starts the workflow and each handler). */
export function setCurrentScope(scope) {
  current = scope;
}

// ------------------------------------------------------------ await hooks

/** The build's `await` hook, part one: called with the awaited value at the
 * `await`; remembers the current scope with the settled value. */
export function __caisson_suspend(value) {
  const scope = current;
  return nativeThen.call(
    Promise.resolve(value),
    (v) => ({ scope, ok: true, value: v }),
    (e) => ({ scope, ok: false, value: e })
  );
}

/** The build's `await` hook, part two: reinstates the remembered scope as
 * the function continues, then returns the value or throws the error. */
export function __caisson_resume(settled) {
  current = settled.scope;
  if (settled.ok) return settled.value;
  throw settled.value;
}

let installed = false;

/** @internal Makes `then` callbacks and `queueMicrotask` run in the scope
 * current when they were registered. Installed once, when a run starts
 * (not at module load, which runs while the component is built). */
export function installScopePropagation() {
  if (installed) return;
  installed = true;
  // eslint-disable-next-line no-extend-native
  Promise.prototype.then = function then(onFulfilled, onRejected) {
    return nativeThen.call(this, bindScope(onFulfilled), bindScope(onRejected));
  };
  const nativeQueueMicrotask = globalThis.queueMicrotask;
  if (typeof nativeQueueMicrotask === 'function') {
    globalThis.queueMicrotask = (fn) => nativeQueueMicrotask(bindScope(fn));
  }
}
