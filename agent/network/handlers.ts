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
import { CONNECTIVITY_TIMEOUT_MAX_SEC } from './canonicalize.js';
import { NETWORK_DEFAULTS } from './model.js';

type NetworkMethod = 'Host.setupNetworks' | 'Host.setSafeNetworkConfig' | 'Host.getNetworkCapabilities';
export type NetworkHandlers = { [M in NetworkMethod]: Handler<M> };

/**
 * CALL_TIMEOUT_MS(request) is how long a setupNetworks call may run
 * (setupNetworksTimeoutMs with the agent's settings): the dispatcher applies
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

/**
 * How long the dispatcher lets a setupNetworks run before answering 1007:
 * the ordinary request timeout plus the connectivity wait and two DHCP waits
 * (apply, rollback), so a slow but normal call is not cut short.
 */
export function setupNetworksTimeoutMs(params: unknown, requestTimeoutMs: number, dhcpTimeoutMs: number): number {
  const raw = (params as { options?: { connectivityTimeout?: unknown } } | undefined)?.options?.connectivityTimeout;
  const sec = Number(raw ?? NETWORK_DEFAULTS.connectivityTimeoutSec);
  return requestTimeoutMs + (Number.isFinite(sec) ? Math.min(sec, CONNECTIVITY_TIMEOUT_MAX_SEC) * 1000 : 0) + 2 * dhcpTimeoutMs;
}
