// What the addon does for the agent's memory rather than for libvirt: a
// full GC now, malloc_trim, and glibc's own figures.
import { native } from './native.js';

/** glibc's account of its memory over all arenas, in bytes (mallinfo2). */
export interface MallocStats {
  /** Bytes malloc holds from the kernel outside mmapped blocks (its arenas). */
  arenaBytes: number;
  inUseBytes: number;
  /** Free bytes inside the arenas: what fragmentation keeps and malloc_trim can return. */
  freeBytes: number;
  mmappedBytes: number;
  topReleasableBytes: number;
}

export interface ProcessMemoryBinding {
  collectGarbageNow(): boolean;
  trimMalloc(): boolean;
  mallocStats(): MallocStats | null;
}

/** A full, memory-reducing V8 GC, now (it blocks the event loop for its duration). */
export function collectGarbageNow(): boolean {
  return native.collectGarbageNow();
}

/** malloc_trim(0): true if glibc gave pages back. */
export function trimMalloc(): boolean {
  return native.trimMalloc();
}

/** null where malloc is not glibc 2.33 or later. */
export function mallocStats(): MallocStats | null {
  return native.mallocStats();
}
