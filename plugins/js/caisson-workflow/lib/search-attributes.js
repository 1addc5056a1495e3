// Search attributes and memo, as `@temporalio/common` shapes them, to and
// from the WIT `search-attribute` and `memo-field` lists.
//
// Two forms, as in the TypeScript SDK:
// * typed: `[{ key: defineSearchAttributeKey('OrderStatus', SearchAttributeType.KEYWORD), value: 'shipped' }]`
//   (value null removes the attribute);
// * legacy: `{ OrderStatus: ['shipped'] }` (a list of values; [] or
//   undefined removes it). The type is read from the values: strings are
//   Keyword (KeywordList when there are several), integers Int, other
//   numbers Double, booleans Bool, Dates Datetime. Use the typed form for
//   Text attributes.

export const SearchAttributeType = {
  TEXT: 'TEXT',
  KEYWORD: 'KEYWORD',
  INT: 'INT',
  DOUBLE: 'DOUBLE',
  BOOL: 'BOOL',
  DATETIME: 'DATETIME',
  KEYWORD_LIST: 'KEYWORD_LIST',
};

export function defineSearchAttributeKey(name, type) {
  return { name, type };
}

const WIT_TAG = {
  TEXT: 'text',
  KEYWORD: 'keyword',
  INT: 'int',
  DOUBLE: 'double',
  BOOL: 'bool',
  DATETIME: 'datetime',
  KEYWORD_LIST: 'keyword-list',
};
const SDK_TYPE = Object.fromEntries(Object.entries(WIT_TAG).map(([k, v]) => [v, k]));

function witValue(name, type, value) {
  const bad = (what) => new TypeError(`search attribute ${name}: ${JSON.stringify(value)} is not ${what} (type ${type})`);
  switch (type) {
    case 'TEXT':
    case 'KEYWORD':
      if (typeof value !== 'string') throw bad('a string');
      return { tag: WIT_TAG[type], val: value };
    case 'INT':
      if (!Number.isInteger(value)) throw bad('an integer');
      return { tag: 'int', val: BigInt(value) };
    case 'DOUBLE':
      if (typeof value !== 'number') throw bad('a number');
      return { tag: 'double', val: value };
    case 'BOOL':
      if (typeof value !== 'boolean') throw bad('a boolean');
      return { tag: 'bool', val: value };
    case 'DATETIME': {
      const date = value instanceof Date ? value : new Date(value);
      if (Number.isNaN(date.getTime())) throw bad('a Date');
      return { tag: 'datetime', val: date.toISOString() };
    }
    case 'KEYWORD_LIST':
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw bad('a list of strings');
      return { tag: 'keyword-list', val: value };
    default:
      throw new TypeError(`search attribute ${name}: unknown type ${JSON.stringify(type)} (use SearchAttributeType)`);
  }
}

function inferType(name, values) {
  const first = values[0];
  if (typeof first === 'string') return values.length > 1 ? 'KEYWORD_LIST' : 'KEYWORD';
  if (typeof first === 'boolean') return 'BOOL';
  if (typeof first === 'number') return Number.isInteger(first) ? 'INT' : 'DOUBLE';
  if (first instanceof Date) return 'DATETIME';
  throw new TypeError(`search attribute ${name}: cannot tell the type of ${JSON.stringify(first)}; use the typed form`);
}

/** WIT `list<search-attribute>` from either SDK form. */
export function searchAttributesToWit(attributes) {
  if (attributes === undefined || attributes === null) return [];
  if (Array.isArray(attributes)) {
    return attributes.map(({ key, value }) => ({
      name: key.name,
      value: value === null || value === undefined ? undefined : witValue(key.name, key.type, value),
    }));
  }
  return Object.entries(attributes).map(([name, values]) => {
    if (values === undefined || values === null || (Array.isArray(values) && values.length === 0)) return { name, value: undefined };
    if (!Array.isArray(values)) throw new TypeError(`search attribute ${name}: legacy values are lists (e.g. ['shipped']), got ${JSON.stringify(values)}`);
    const type = inferType(name, values);
    return { name, value: witValue(name, type, type === 'KEYWORD_LIST' ? values : values[0]) };
  });
}

function sdkValue(value) {
  switch (value.tag) {
    case 'int':
      return Number(value.val);
    case 'datetime':
      return new Date(value.val);
    default:
      return value.val;
  }
}

/** Read-only typed search attributes, as `workflowInfo().typedSearchAttributes`. */
export class TypedSearchAttributes {
  constructor(pairs = []) {
    this.pairs = new Map(pairs.map((p) => [p.key.name, p]));
  }
  get(key) {
    const pair = this.pairs.get(key.name);
    return pair && pair.key.type === key.type ? pair.value : undefined;
  }
  getAll() {
    return [...this.pairs.values()];
  }
  updateCopy(updates) {
    const next = new TypedSearchAttributes(this.getAll());
    for (const u of updates) {
      if (u.value === null || u.value === undefined) next.pairs.delete(u.key.name);
      else next.pairs.set(u.key.name, u);
    }
    return next;
  }
}

/** (legacy map, typed) from WIT `list<search-attribute>`. */
export function searchAttributesFromWit(list) {
  const legacy = {};
  const pairs = [];
  for (const { name, value } of list) {
    if (!value) continue;
    const v = sdkValue(value);
    legacy[name] = Array.isArray(v) ? v : [v];
    pairs.push({ key: { name, type: SDK_TYPE[value.tag] }, value: v });
  }
  return { legacy, typed: new TypedSearchAttributes(pairs) };
}

/** WIT `list<memo-field>` from a record (null/undefined removes a field). */
export function memoToWit(memo) {
  if (memo === undefined || memo === null) return [];
  return Object.entries(memo).map(([name, value]) => ({
    name,
    value: value === undefined || value === null ? undefined : JSON.stringify(value),
  }));
}

export function memoFromWit(list) {
  const memo = {};
  for (const { name, value } of list) {
    if (value === undefined) continue;
    try {
      memo[name] = JSON.parse(value);
    } catch {
      memo[name] = value;
    }
  }
  return memo;
}
