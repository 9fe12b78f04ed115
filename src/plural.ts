/** Counts for people: `1 replica`, `3 replicas`, `2 directories`. */

/** `n` and `noun`, the plural (`many`, default `noun` + s) unless `n` is 1. */
export function counted(n: number, noun: string, many = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : many}`;
}
