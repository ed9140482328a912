// What the addon does for the agent's memory rather than for libvirt: a
// memory-reducing GC, malloc_trim, and glibc's own figures.
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
  memoryPressure(critical: boolean): boolean;
  trimMalloc(): Promise<boolean>;
  mallocStats(): MallocStats | null;
}

/**
 * Tells V8 memory is short. 'critical': a full, memory-reducing GC now (it
 * blocks the event loop for its duration: 200+ ms measured on a loaded
 * agent). 'moderate': the same GC done incrementally, in small steps.
 */
export function memoryPressure(level: 'moderate' | 'critical'): boolean {
  return native.memoryPressure(level === 'critical');
}

/** malloc_trim(0), on the thread pool: true if glibc gave pages back. */
export function trimMalloc(): Promise<boolean> {
  return native.trimMalloc();
}

/** null where malloc is not glibc 2.33 or later. */
export function mallocStats(): MallocStats | null {
  return native.mallocStats();
}
