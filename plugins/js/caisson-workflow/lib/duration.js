// Durations as the TypeScript SDK takes them: a number of milliseconds, or
// a string in the format of the `ms` npm package ('1 minute', '10s',
// '1.5h', '2 days'), which `@temporalio/common`'s `Duration` is.

const UNITS = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  y: 31_557_600_000,
};

// The `ms` package's grammar: a number, optional spaces, an optional unit
// spelled in one of its long or short forms (case-insensitive).
const PATTERN =
  /^(-?(?:\d+)?\.?\d+) *(milliseconds?|msecs?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w|years?|yrs?|y)?$/i;

function unitOf(word) {
  const w = word.toLowerCase();
  if (w.startsWith('ms') || w.startsWith('msec') || w.startsWith('millisecond')) return UNITS.ms;
  if (w.startsWith('s')) return UNITS.s;
  if (w.startsWith('m')) return UNITS.m;
  if (w.startsWith('h')) return UNITS.h;
  if (w.startsWith('d')) return UNITS.d;
  if (w.startsWith('w')) return UNITS.w;
  return UNITS.y;
}

/** Milliseconds of `value` (a number of ms or an `ms`-format string);
 * throws a TypeError naming `what` when it is neither. */
export function msToNumber(value, what = 'duration') {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`${what}: ${value} is not a finite number of milliseconds`);
    return value;
  }
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string') {
    const match = PATTERN.exec(value.trim());
    if (match) return Math.round(parseFloat(match[1]) * (match[2] ? unitOf(match[2]) : 1));
  }
  throw new TypeError(
    `${what}: ${JSON.stringify(value)} is not a duration: give milliseconds (a number) or a string like '30s', '5 minutes', '1.5h'`
  );
}

/** `msToNumber` for optional values; undefined stays undefined. */
export function msOptionalToNumber(value, what) {
  return value === undefined || value === null ? undefined : msToNumber(value, what);
}

/** A WIT `duration-ms` (u64, a BigInt) from an optional duration; negative
 * values are refused, as Temporal refuses them. */
export function toWitMs(value, what) {
  const n = msOptionalToNumber(value, what);
  if (n === undefined) return undefined;
  if (n < 0) throw new TypeError(`${what}: ${JSON.stringify(value)} is negative`);
  return BigInt(Math.round(n));
}
