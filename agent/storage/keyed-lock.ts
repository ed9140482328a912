// Runs async sections one at a time per key (an LV, a domain); different keys run in parallel.
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  async with<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(fn, fn);
    const tail = result.then(() => {}, () => {});
    this.tails.set(key, tail);
    try {
      return await result;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Several keys, taken in sorted order so two callers never deadlock. */
  async withAll<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const step = (i: number): Promise<T> => (i >= sorted.length ? fn() : this.with(sorted[i]!, () => step(i + 1)));
    return step(0);
  }
}
