// Every hook point, under VDSM's names, in one table. A verb that gains
// hooks adds its points here. `kind` says what the hook's file holds;
// `raising` says whether a failure aborts the operation (VDSM's rules).
import { ConfigError } from '../config/load.js';

export type HookKind = 'xml' | 'json';

export interface HookPointDef {
  kind: HookKind;
  /** A failure aborts the operation with error 78 (hookError). */
  raising: boolean;
  /** What the file holds, for the docs. */
  input: string;
}

const xmlBefore = (input: string, raising = true): HookPointDef => ({ kind: 'xml', raising, input });
const xmlAfter = (input: string): HookPointDef => ({ kind: 'xml', raising: false, input });
const json = (raising: boolean, input: string): HookPointDef => ({ kind: 'json', raising, input });

export const HOOK_POINTS = {
  // VM lifecycle (the domain XML)
  before_vm_start: xmlBefore('domain XML to be started; what the hooks leave is what starts'),
  after_vm_start: xmlAfter('live domain XML'),
  before_vm_cont: xmlBefore('domain XML'),
  after_vm_cont: xmlAfter('domain XML'),
  before_vm_pause: xmlBefore('domain XML'),
  after_vm_pause: xmlAfter('domain XML'),
  before_vm_destroy: xmlBefore('domain XML', false), // VDSM ignores its errors
  after_vm_destroy: xmlAfter('domain XML as it was'),
  before_vm_set_ticket: xmlBefore('domain XML', false), // VDSM ignores its errors
  after_vm_set_ticket: xmlAfter('domain XML'),
  before_vm_migrate_source: xmlBefore('domain XML'),
  after_vm_migrate_source: xmlAfter('domain XML'),
  before_vm_migrate_destination: xmlBefore('source domain XML'),
  after_vm_migrate_destination: xmlAfter('domain XML'),
  before_vm_hibernate: xmlBefore('domain XML'),
  after_vm_hibernate: xmlAfter('domain XML as it was saved'),
  before_vm_dehibernate: xmlBefore('domain XML to be resumed (the spec as given; the state file keeps its own)'),
  after_vm_dehibernate: xmlAfter('live domain XML'),
  // devices (the device XML)
  before_device_create: xmlBefore('device XML of a non-disk device with custom properties'),
  after_device_create: xmlAfter('device XML'),
  before_device_destroy: xmlBefore('device XML'),
  after_device_destroy: xmlAfter('device XML'),
  before_nic_hotplug: xmlBefore('NIC device XML; what the hooks leave is attached'),
  after_nic_hotplug: xmlAfter('NIC device XML'),
  after_nic_hotplug_fail: xmlAfter('NIC device XML'),
  before_nic_hotunplug: xmlBefore('NIC device XML'),
  after_nic_hotunplug: xmlAfter('NIC device XML'),
  after_nic_hotunplug_fail: xmlAfter('NIC device XML'),
  before_disk_hotplug: xmlBefore('disk device XML; what the hooks leave is attached'),
  after_disk_hotplug: xmlAfter('disk device XML'),
  before_disk_hotunplug: xmlBefore('disk device XML'),
  after_disk_hotunplug: xmlAfter('disk device XML'),
  after_disk_prepare: json(true, 'the prepared drive (path, diskType, format); may change them'),
  // host data (JSON)
  before_get_caps: json(true, '{}'),
  after_get_caps: json(false, 'the capabilities result; may change it'),
  before_get_stats: json(true, '{}'),
  after_get_stats: json(false, 'the host stats result; may change it'),
  before_get_vm_stats: json(true, '{"vmId": ...}'),
  after_get_vm_stats: json(false, 'the statsList of the VM; may change it'),
  before_get_all_vm_stats: json(true, '{}'),
  after_get_all_vm_stats: json(false, 'the statsList of all VMs; may change it'),
  // networks (JSON)
  before_network_setup: json(true, '{"request": {"networks", "bondings", "options"}}; may rewrite it; the rewrite is validated again (78 naming the field)'),
  after_network_setup: json(false, '{"request": ...} as applied (after any rewrite)'),
  after_network_setup_fail: json(false, '{"request": ...} as attempted; after the rollback, or when the request was refused'),
  // the daemon (VDSM's names, so existing hooks keep working)
  before_vdsm_start: json(false, '{}'),
  after_vdsm_stop: json(false, '{}'),
} as const satisfies Record<string, HookPointDef>;

export type HookPoint = keyof typeof HOOK_POINTS;

export function isHookPoint(name: string): name is HookPoint {
  return Object.hasOwn(HOOK_POINTS, name);
}

/** docs/hooks.md's table of points, from this table. */
/** The hooks.timeoutOverrides setting: "before_vm_start=120000,after_get_caps=5000" -> {before_vm_start: 120000, ...}; a bad entry stops the daemon. */
export function parseTimeoutOverrides(text: string): Partial<Record<HookPoint, number>> {
  const out: Partial<Record<HookPoint, number>> = {};
  for (const part of text.split(',').map((x) => x.trim()).filter(Boolean)) {
    const [point, ms] = part.split('=');
    if (!point || !isHookPoint(point) || !ms || !/^\d+$/.test(ms)) throw new ConfigError(`hooks.timeoutOverrides: bad entry "${part}"`, { setting: 'hooks.timeoutOverrides' });
    out[point] = Number(ms);
  }
  return out;
}

export function hookPointsMarkdown(): string {
  const rows = Object.entries(HOOK_POINTS).map(([name, d]) =>
    `| \`${name}\` | ${d.kind === 'xml' ? '`_hook_domxml`' : '`_hook_json`'} | ${d.raising ? 'aborts the call (78)' : 'logged only'} | ${d.input} |`);
  return ['| point | file in | a failure | what the file holds |', '| --- | --- | --- | --- |', ...rows].join('\n') + '\n';
}
