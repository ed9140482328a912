// Loaded into a benchmarked agent (NODE_OPTIONS=--import=<this file>; the
// agent itself has no such hook): on SIGUSR2 it writes one JSON line to
// stderr with the memory as V8 and Node see it, for bench/agent-memory.ts.
// Nothing else; it costs the measured process a few KiB.
import { getHeapSpaceStatistics } from 'node:v8';
import { PROBE_MSG } from './agent-memory.js';

process.on('SIGUSR2', () => {
  const m = process.memoryUsage();
  const spaces: Record<string, number> = {};
  for (const s of getHeapSpaceStatistics()) spaces[s.space_name] = s.physical_space_size;
  process.stderr.write(JSON.stringify({
    msg: PROBE_MSG, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, spaces,
  }) + '\n');
});
