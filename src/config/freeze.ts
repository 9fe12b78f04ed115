/**
 * Immutability and ordering helpers for the spec: sorted plain records, a read-only Map for
 * `positions`, and a recursive freeze.
 */

/** Code-unit comparison: locale-independent, so output is the same on every host. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A plain object with its keys in sorted order. Built with `Object.fromEntries`, so keys such as
 * `__proto__` become ordinary own properties. Later entries win over earlier ones with the same key.
 */
export function sortedRecord<V>(entries: Iterable<readonly [string, V]>): Record<string, V> {
  const map = new Map<string, V>();
  for (const [key, value] of entries) map.set(key, value);
  return Object.fromEntries([...map.entries()].sort((a, b) => compareStrings(a[0], b[0])));
}

/** A Map that cannot be changed after construction: `set`, `delete` and `clear` throw. */
export class FrozenMap<K, V> extends Map<K, V> {
  constructor(entries: Iterable<readonly [K, V]>) {
    super();
    for (const [key, value] of entries) Map.prototype.set.call(this, key, value);
    Object.freeze(this);
  }

  override set(_key: K, _value: V): this {
    throw new TypeError('this map is read-only');
  }

  override delete(_key: K): boolean {
    throw new TypeError('this map is read-only');
  }

  override clear(): void {
    throw new TypeError('this map is read-only');
  }
}

/** Freezes `value` and every object and array reachable from it; Map values are frozen too. */
export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) {
    if (value instanceof Map) for (const v of value.values()) deepFreeze(v);
    return value;
  }
  if (value instanceof Map) for (const v of value.values()) deepFreeze(v);
  for (const key of Reflect.ownKeys(value)) deepFreeze((value as Record<PropertyKey, unknown>)[key]);
  return Object.freeze(value);
}
