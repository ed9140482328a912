// What the addon does for the agent's own process rather than for libvirt.
import { native } from './native.js';

/**
 * Sets FD_CLOEXEC on every descriptor >= 3 the agent inherited, so that no
 * program it runs (a hook) gets one. Returns how many it changed.
 */
export function closeInheritedFdsOnExec(): number {
  return native.markInheritedFdsCloexec();
}
