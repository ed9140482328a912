// Counting what keeps Node's event loop alive (timers, sockets), to show that close() leaves
// nothing behind: compare the counts before and after.

export type ResourceCounts = Record<string, number>;

export function activeResources(): ResourceCounts {
  const c: ResourceCounts = {};
  for (const r of process.getActiveResourcesInfo()) c[r] = (c[r] ?? 0) + 1;
  return c;
}

/** The kinds of resource there are more of in `x` than in `than`. */
export function moreThan(x: ResourceCounts, than: ResourceCounts): string[] {
  return Object.keys(x).filter((k) => (x[k] ?? 0) > (than[k] ?? 0)).sort();
}
