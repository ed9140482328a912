// lvm2 commands for one storage domain's devices. Every command gets one
// --config string that:
//   - limits LVM to the domain's PVs (devices filter; no devices file, no udev
//     device list), so a scan never touches other disks and stays fast;
//   - has global{activation=0} when device-mapper is not used (the `loop`
//     activation driver): LV sizes, tags and VG free space are then real
//     LVM metadata while nothing is ever activated;
//   - disables metadata backup/archive (one file per change in /etc/lvm,
//     useless for shared storage whose metadata lives on the PVs).
// (Sections must not repeat inside one --config: a later `global{}` replaces
// an earlier one wholesale, so the string is built in one piece.)
import { silentLogger, type Logger } from '../log.js';
import { StorageCommandError, StorageParamsError } from './errors.js';
import { run as defaultRunner, type RunResult, type Runner } from './exec.js';

export interface LvmOptions {
  /** false: device-mapper is not used; every command runs with global{activation=0}. */
  activation: boolean;
  timeoutMs: number;
  runner?: Runner;
  log?: Logger;
}

export interface LvInfo {
  vg: string;
  name: string;
  size: number;
  tags: string[];
  attr: string;
}

export interface VgInfo {
  name: string;
  uuid: string;
  size: number;
  free: number;
  extentSize: number;
  tags: string[];
  pvs: string[];
  lvCount: number;
}

const DEVICE_RE = /^\/[A-Za-z0-9_./:+@-]+$/;
const NAME_RE = /^[A-Za-z0-9_+.-]+$/;

export function checkDevice(d: string): string {
  if (!DEVICE_RE.test(d)) throw new StorageParamsError(`bad device path ${JSON.stringify(d)}`);
  return d;
}

function checkName(what: string, n: string): string {
  if (!NAME_RE.test(n) || n.startsWith('-')) throw new StorageParamsError(`bad ${what} name ${JSON.stringify(n)}`);
  return n;
}

const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The --config string for these devices. */
export function lvmConfig(devices: readonly string[], activation: boolean): string {
  const accept = devices.map((d) => `"a|^${reEscape(checkDevice(d))}$|"`);
  const filter = `[${[...accept, '"r|.*|"'].join(',')}]`;
  const global = activation ? 'global{use_lvmpolld=0}' : 'global{activation=0 use_lvmpolld=0}';
  return [
    global,
    `devices{filter=${filter} global_filter=${filter} use_devicesfile=0 obtain_device_list_from_udev=0 hints="none"}`,
    activation ? 'activation{udev_sync=1 udev_rules=1}' : 'activation{udev_sync=0 udev_rules=0 monitoring=0}',
    'backup{backup=0 archive=0}',
  ].join(' ');
}

export class Lvm {
  readonly config: string;
  private readonly runner: Runner;
  private readonly log: Logger;

  constructor(readonly devices: readonly string[], readonly opts: LvmOptions) {
    if (devices.length === 0) throw new StorageParamsError('a block domain needs at least one device');
    this.config = lvmConfig(devices, opts.activation);
    this.runner = opts.runner ?? defaultRunner;
    this.log = opts.log ?? silentLogger;
  }

  /** `lvm <sub> --config ... <args>`; okCodes as in RunOptions. */
  cmd(sub: string, args: readonly string[], okCodes?: readonly number[]): Promise<RunResult> {
    return this.runner(['lvm', sub, '--config', this.config, ...args], {
      timeoutMs: this.opts.timeoutMs, env: { LVM_SUPPRESS_FD_WARNINGS: '1' }, log: this.log, ...(okCodes ? { okCodes } : {}),
    });
  }

  async pvcreate(devices: readonly string[], o: { metadataSizeMiB: number; force?: boolean }): Promise<void> {
    await this.cmd('pvcreate', [...(o.force ? ['-ff', '-y'] : []), '--metadatasize', `${o.metadataSizeMiB}m`, ...devices.map(checkDevice)]);
  }

  async pvremove(devices: readonly string[]): Promise<void> {
    await this.cmd('pvremove', ['-y', ...devices.map(checkDevice)]);
  }

  async vgcreate(vg: string, devices: readonly string[], o: { extentSizeMiB: number; tags: readonly string[] }): Promise<void> {
    await this.cmd('vgcreate', ['-s', `${o.extentSizeMiB}m`, ...o.tags.flatMap((t) => ['--addtag', t]), checkName('VG', vg), ...devices.map(checkDevice)]);
  }

  async vgremove(vg: string): Promise<void> {
    await this.cmd('vgremove', ['-f', checkName('VG', vg)]);
  }

  /** The VG, or undefined if LVM does not find it on these devices. */
  async vgs(vg: string): Promise<VgInfo | undefined> {
    const r = await this.cmd('vgs', ['--reportformat', 'json', '--units', 'b', '--nosuffix',
      '-o', 'vg_name,vg_uuid,vg_size,vg_free,vg_extent_size,vg_tags,lv_count,pv_name', checkName('VG', vg)], [0, 5]);
    if (r.rc !== 0) {
      if (/not found|Cannot process volume group/i.test(r.stderr)) return undefined;
      throw new StorageCommandError(['lvm', 'vgs', vg], r.rc, r.stderr);
    }
    const rows = report(r.stdout, 'vg');
    const first = rows[0];
    if (!first) return undefined;
    return {
      name: str(first.vg_name), uuid: str(first.vg_uuid), size: num(first.vg_size), free: num(first.vg_free),
      extentSize: num(first.vg_extent_size), tags: splitTags(first.vg_tags), lvCount: num(first.lv_count),
      pvs: rows.map((x) => str(x.pv_name)).filter(Boolean),
    };
  }

  /** LVs of the VG (one LV if named). A missing LV gives []. */
  async lvs(vg: string, lv?: string): Promise<LvInfo[]> {
    const target = lv ? `${checkName('VG', vg)}/${checkName('LV', lv)}` : checkName('VG', vg);
    const r = await this.cmd('lvs', ['--reportformat', 'json', '--units', 'b', '--nosuffix',
      '-o', 'vg_name,lv_name,lv_size,lv_tags,lv_attr', target], [0, 5]);
    if (r.rc !== 0) {
      if (lv && /Failed to find logical volume/i.test(r.stderr)) return [];
      throw new StorageCommandError(['lvm', 'lvs', target], r.rc, r.stderr);
    }
    return report(r.stdout, 'lv').map((x) => ({
      vg: str(x.vg_name), name: str(x.lv_name), size: num(x.lv_size), tags: splitTags(x.lv_tags), attr: str(x.lv_attr),
    }));
  }

  /** Creates an LV without activating or zeroing it (activation is the driver's job). */
  async lvcreate(vg: string, lv: string, sizeMiB: number, tags: readonly string[]): Promise<void> {
    await this.cmd('lvcreate', ['-n', checkName('LV', lv), '-L', `${sizeMiB}m`, '--activate', 'n', '--zero', 'n', '--wipesignatures', 'n',
      ...tags.flatMap((t) => ['--addtag', t]), checkName('VG', vg)]);
  }

  /** lvextend to sizeMiB (LVM rounds up to whole extents). The caller checks that this is a growth. */
  async lvextend(vg: string, lv: string, sizeMiB: number): Promise<void> {
    const r = await this.cmd('lvextend', ['-L', `${sizeMiB}m`, `${checkName('VG', vg)}/${checkName('LV', lv)}`], [0, 5]);
    // Another caller got there first: "New size (N extents) matches existing size (N extents)".
    if (r.rc !== 0 && !/matches existing size/.test(r.stderr)) throw new StorageCommandError(['lvm', 'lvextend', `${vg}/${lv}`], r.rc, r.stderr);
  }

  async lvremove(vg: string, lvs: readonly string[]): Promise<void> {
    if (lvs.length === 0) return;
    await this.cmd('lvremove', ['-f', ...lvs.map((lv) => `${checkName('VG', vg)}/${checkName('LV', lv)}`)]);
  }

  async lvchangeTags(vg: string, lv: string, o: { add?: readonly string[]; del?: readonly string[] }): Promise<void> {
    const args = [...(o.del ?? []).flatMap((t) => ['--deltag', t]), ...(o.add ?? []).flatMap((t) => ['--addtag', t])];
    if (args.length) await this.cmd('lvchange', [...args, `${checkName('VG', vg)}/${checkName('LV', lv)}`]);
  }

  async vgchangeTags(vg: string, o: { add?: readonly string[]; del?: readonly string[] }): Promise<void> {
    const args = [...(o.del ?? []).flatMap((t) => ['--deltag', t]), ...(o.add ?? []).flatMap((t) => ['--addtag', t])];
    if (args.length) await this.cmd('vgchange', [...args, checkName('VG', vg)]);
  }

  /** lvchange with activation flags (-ay, -an, --refresh) on several LVs at once: the lvm driver's command. */
  async lvchange(vg: string, lvs: readonly string[], flags: readonly string[]): Promise<RunResult> {
    return this.cmd('lvchange', [...flags, ...lvs.map((lv) => `${checkName('VG', vg)}/${checkName('LV', lv)}`)]);
  }
}

function report(stdout: string, kind: 'vg' | 'lv'): Array<Record<string, unknown>> {
  try {
    const j = JSON.parse(stdout) as { report?: Array<Record<string, unknown>> };
    return (j.report ?? []).flatMap((r) => (r[kind] as Array<Record<string, unknown>> | undefined) ?? []);
  } catch (e) {
    throw new StorageCommandError(['lvm', `${kind}s`], 0, `unparsable report: ${stdout.slice(0, 200)}`, { cause: e });
  }
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => Number(str(v) || 0);
const splitTags = (v: unknown): string[] => str(v).split(',').filter(Boolean);
