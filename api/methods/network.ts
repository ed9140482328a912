// Host network verbs (VDSM's setupNetworks family).
import { method, type MethodDef } from '../method.js';
import { Empty } from '../types.js';
import { SetupNetworksParams, setupNetworksTimeoutMs } from '../network-request.js';
import { NetworkCapabilities, SetupNetworksResult } from '../network.js';

const NETWORK_SETUP_ERRORS = [
  'invalidParams', 'unavailable', 'networkLostConnection', 'networkSetupFailed', 'networkRollbackFailed', 'networkCommandFailed', 'hookError', 'shuttingDown',
] as const;

export const NETWORK_METHODS = {
  'Host.setupNetworks': method({
    summary: 'Sets up host networks and bonds (VDSM\'s attributes: nic or bonding, vlan, bridged, stp, mtu, ipv4 {bootproto, ipaddr, netmask|prefix, gateway}, '
      + 'ipv6 {address, gateway, autoconf, dhcpv6}, defaultRoute, nameservers, remove; bonds: nics, options, remove). The request is validated '
      + 'before anything changes (a bad one names the field); before_network_setup may rewrite it. The change is applied and verified, then, '
      + 'with connectivityCheck (default on), kept only if the engine confirms within connectivityTimeout (default 4 s): Host.confirmConnectivity '
      + 'or any other request. Otherwise it is rolled back and the rollback verified: 10 (rolled back, verified), 29 (apply failed; rolled back, '
      + 'verified), 1009 (rollback not verified); error data carries reason, rollback {verified, diff, steps} and phasesMs. A call while one '
      + 'runs gets 40. The reply may never reach a client the change cut off: Host.getNetworkCapabilities().lastSetup says how the call ended.',
    params: SetupNetworksParams, result: SetupNetworksResult, errors: NETWORK_SETUP_ERRORS, since: '0.4', mutating: true, duringRecovery: true,
    // The engine's confirmation wait and two DHCP waits (apply, rollback) on top of the request timeout.
    timeoutMs: (p, b) => setupNetworksTimeoutMs(p, b.requestMs, b.dhcpMs),
  }),
  'Host.setSafeNetworkConfig': method({
    summary: 'Persists the running network config (atomically) as the one the host returns to at boot (restore-networks); clears netConfigDirty.',
    params: Empty, result: Empty, errors: ['unavailable'], since: '0.4', mutating: true, duringRecovery: true,
  }),
  'Host.getNetworkCapabilities': method({
    summary: 'Nics, bridges, VLANs and bonds with their live state, the managed networks, netConfigDirty, and how the last setupNetworks ended.',
    params: Empty, result: NetworkCapabilities, errors: ['networkCommandFailed'], since: '0.4', mutating: false,
  }),
} as const satisfies Record<string, MethodDef>;

