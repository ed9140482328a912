// setupNetworks' hook points, VDSM's way (JSON hooks, `_hook_json`):
// - before_network_setup gets {"request": {"networks", "bondings", "options"}}
//   and may rewrite it; what it leaves is validated again and applied. A
//   failing script, invalid JSON or a missing request aborts the call (78)
//   before anything changed.
// - after_network_setup or after_network_setup_fail gets the request as it
//   was applied (or attempted); its failures are logged only.
import { HookError } from '../../api/errors.js';
import type { Hooks } from '../hooks/hooks.js';
import { silentLogger, type Logger } from '../log.js';
import type { SetupHooks } from './index.js';

export function networkSetupHooks(hooks: Hooks, log: Logger = silentLogger): SetupHooks {
  const out: SetupHooks = {
    async after(ok, request) {
      const point = ok ? 'after_network_setup' : 'after_network_setup_fail';
      try {
        await hooks.run(point, { data: JSON.stringify({ request }) });
      } catch (e) {
        log.warn('network hook failed', { point, err: e });
      }
    },
  };
  // Only when scripts are installed: otherwise the request is not validated twice.
  if (hooks.has('before_network_setup')) {
    out.before = async (request) => {
      const r = await hooks.filterJson<unknown>('before_network_setup', { request });
      const rewritten = r && typeof r === 'object' && !Array.isArray(r) ? (r as Record<string, unknown>)['request'] : undefined;
      if (!rewritten || typeof rewritten !== 'object' || Array.isArray(rewritten)) {
        throw new HookError('before_network_setup left no "request" object', { data: { point: 'before_network_setup' } });
      }
      return rewritten;
    };
  }
  return out;
}
