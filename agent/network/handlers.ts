// The network verbs' handlers (Host.setupNetworks, Host.setSafeNetworkConfig,
// Host.getNetworkCapabilities) over HostNetworks. Host.confirmConnectivity is
// not here: every engine request confirms connectivity in the dispatcher.
import { HookError, HostvisorError, InvalidParamsError } from '../../api/errors.js';
import type { Handler } from '../rpc/dispatcher.js';
import type { Hooks } from '../hooks/hooks.js';
import type { SetupNetworksResultT } from '../../api/network.js';
import { describeStep } from './apply.js';
import { networkSetupHooks } from './hooks.js';
import type { HostNetworks, SetupNetworksResult } from './index.js';
// The formula lives with the request (api/network-request.ts): the method definition applies it.
export { setupNetworksTimeoutMs } from '../../api/network-request.js';

type NetworkMethod = 'Host.setupNetworks' | 'Host.setSafeNetworkConfig' | 'Host.getNetworkCapabilities';
export type NetworkHandlers = { [M in NetworkMethod]: Handler<M> };

/**
 * CALL_TIMEOUT_MS(request) is how long a setupNetworks call may run
 * (the method definition's timeoutMs with the agent's bounds): the dispatcher applies
 * it to the request as sent, and the handler raises it again for the request
 * before_network_setup left, whose connectivityTimeout may be longer.
 */
export function createNetworkHandlers(networks: HostNetworks, hooks: Hooks, callTimeoutMs: (request: unknown) => number): NetworkHandlers {
  return {
    'Host.setupNetworks': async (p, ctx) => {
      const setupHooks = networkSetupHooks(hooks, ctx.log);
      const before = setupHooks.before;
      const extend = ctx.extendTimeout;
      if (before && extend) {
        setupHooks.before = async (request) => {
          const rewritten = await before(request);
          extend(callTimeoutMs(rewritten));
          return rewritten;
        };
      }
      try {
        const r = await networks.setupNetworks(p, setupHooks);
        return setupResult(r, await networks.netConfigDirty());
      } catch (e) {
        throw withParamsField(e);
      }
    },
    'Host.setSafeNetworkConfig': async () => { await networks.setSafeNetworkConfig(); return {}; },
    'Host.getNetworkCapabilities': () => networks.capabilities(),
  };
}

/**
 * canonicalize names fields from the request's root ("networks.x.mtu"); on
 * the wire every field is named from params, as the dispatcher's own
 * validation does ("params.networks.x.mtu").
 */
function withParamsField(e: unknown): unknown {
  const field = e instanceof HostvisorError ? e.data?.['field'] : undefined;
  if (typeof field !== 'string' || field.startsWith('params')) return e;
  if (e instanceof InvalidParamsError) return new InvalidParamsError(`params.${e.message}`, { cause: e.cause, data: { ...e.data, field: `params.${field}` } });
  if (e instanceof HookError) return new HookError(e.message, { cause: e.cause, data: { ...e.data, field: `params.${field}` } });
  return e;
}

/** The API's answer to a successful setupNetworks. */
export function setupResult(r: SetupNetworksResult, netConfigDirty: boolean): SetupNetworksResultT {
  return {
    status: 'applied',
    confirmed: r.confirmed,
    networks: r.request.networks,
    bondings: r.request.bondings,
    steps: r.apply.steps.map(describeStep),
    leases: Object.fromEntries(Object.entries(r.apply.leases).map(([dev, { dev: _d, ...l }]) => [dev, l])),
    committed: r.committed,
    netConfigDirty,
    phasesMs: r.phasesMs,
  };
}
