// Every tunable of hostvisord: its type (a TypeBox schema), its default and
// the reason for it. This table is the one place tunables are declared: the
// config file is validated against it (load.ts), and packaging/agent.toml and
// docs/config.md are generated from it (`node dist/agent/main.js --print-settings toml|md`).
//
// Operators override values in /etc/hostvisor/agent.toml (or the file named by
// $HOSTVISOR_CONFIG); unknown keys and values outside a setting's type are
// refused at start, naming the setting and what it allows.
import { Type, type Static, type TLiteral, type TSchema, type TUnion } from '@sinclair/typebox';

/** A setting: its schema, which carries its default and, as description, why. */
export type Setting<T extends TSchema = TSchema> = T & { default: Static<T>; description: string };

function setting<T extends TSchema>(type: T, dflt: Static<T>, why: string): Setting<T> {
  return { ...type, default: dflt, description: why };
}
const text = (dflt: string, why: string) => setting(Type.String(), dflt, why);
const flag = (dflt: boolean, why: string) => setting(Type.Boolean(), dflt, why);
/** Durations, sizes, factors: finite and never negative. */
const amount = (dflt: number, why: string) => setting(Type.Number({ minimum: 0 }), dflt, why);
const count = (dflt: number, why: string) => setting(Type.Integer({ minimum: 0 }), dflt, why);
const port = (dflt: number, why: string) => setting(Type.Integer({ minimum: 0, maximum: 65535 }), dflt, why);
/** One of a few words. */
function oneOf<const V extends string[]>(values: [...V], dflt: V[number], why: string): Setting<TUnion<{ [K in keyof V]: TLiteral<V[K] & string> }>> {
  return setting(Type.Union(values.map((v) => Type.Literal(v))), dflt, why) as never;
}

export const SETTINGS = {
  'libvirt.uri': text('qemu:///system',
    'The system QEMU driver is what runs production VMs; tests may point at test:///default.'),
  'libvirt.callTimeoutMs': amount(30_000,
    'Upper bound for one ordinary libvirt call; a hung libvirtd must not hang the agent. Long calls (migration, shutdown) set their own.'),
  'libvirt.keepAliveIntervalSec': amount(5,
    "libvirt's own default: a dead libvirtd is noticed within about interval × (count + 1) = 30 s without flooding it."),
  'libvirt.keepAliveCount': count(5,
    'See keepAliveIntervalSec.'),
  'libvirt.reconnectInitialMs': amount(250,
    'A restarted libvirtd usually answers within a second; start retrying quickly.'),
  'libvirt.reconnectMaxMs': amount(10_000,
    'Cap on the backoff so the agent reconnects within 10 s of libvirtd coming back, without spinning while it is down.'),
  'rpc.host': text('::',
    'Listen on every address, as VDSM does; engines reach hosts over their management network.'),
  'rpc.port': port(54321,
    "VDSM's port, so firewalls and engines configured for VDSM need no change."),
  'rpc.maxMessageBytes': amount(8 * 1024 * 1024,
    'A domain XML with many devices fits easily; a larger frame is refused (WebSocket close 1009) before it is buffered whole.'),
  'rpc.requestTimeoutMs': amount(60_000,
    "VDSM's request timeout. Long operations (VM.create, migration) return at once and report through events."),
  'rpc.maxInFlightPerConnection': count(256,
    'Backpressure: past this many unanswered requests the agent stops reading the connection until answers drain.'),
  'rpc.sendHighWaterBytes': amount(16 * 1024 * 1024,
    'Backpressure: a client that does not read its answers stops being read once this much is queued for it.'),
  'rpc.tlsHandshakeTimeoutMs': amount(10_000,
    "VDSM's TLS handshake timeout: a peer that stalls the handshake cannot hold a socket for long."),
  'pki.dir': text('/etc/pki/hostvisor',
    'Like /etc/pki/vdsm: certs/cacert.pem, certs/hostcert.pem and keys/hostkey.pem.'),
  'pki.createDevCa': flag(true,
    'A fresh host gets a development CA and certificates if it has none, so it is usable at once. Production hosts get certificates from the engine CA; set false there.'),
  'stats.vmIntervalMs': amount(15_000,
    "VDSM's sampling period: one bulk getAllDomainStats call per interval for all VMs."),
  'stats.hostIntervalMs': amount(15_000,
    'Host CPU, memory and NIC rates are computed over this interval.'),
  'vm.destroyTimeoutMs': amount(30_000,
    'Graceful destroy waits for QEMU to flush; past this the agent destroys forcibly.'),
  'vm.shutdownStepTimeoutMs': amount(120_000,
    "VDSM's sys_shutdown_timeout: how long each shutdown method (guest agent, ACPI) gets before the next."),
  'vm.hotunplugTimeoutMs': amount(30_000,
    "VDSM's hot-unplug timeout: the guest must release the device within it."),
  'systemd.watchdogFraction': amount(0.5,
    'WATCHDOG=1 is sent at this fraction of WATCHDOG_USEC, as sd_watchdog_enabled(3) advises.'),
  'hooks.dir': text('/usr/libexec/hostvisor/hooks',
    "Like VDSM's /usr/libexec/vdsm/hooks: one directory per hook point, holding executables."),
  'hooks.timeoutMs': amount(60_000,
    'A hook that hangs is killed (its whole process group) after this, so it cannot hang the agent. VDSM has no limit.'),
  'hooks.timeoutOverrides': text('',
    'Per-point timeouts, e.g. "before_vm_start=120000,after_get_all_vm_stats=5000"; empty = none.'),
  'hooks.outputCapBytes': amount(64 * 1024,
    'How much of a hook\'s stderr is kept and logged; the rest is read and dropped.'),
  'hooks.pythonPath': text('',
    "Where our `hooking` Python module lives (put on PYTHONPATH); empty = the hooks/lib folder of this installation."),
  'hooks.runDir': text('/run/hostvisor',
    'Launch flags files live at <runDir>/<vmId>/launchflags while before_vm_start runs, as VDSM keeps them under /run/vdsm.'),
  'storage.activation': oneOf(['lvm', 'loop'], 'lvm',
    "How block volumes become devices: 'lvm' (lvchange, device-mapper) on real hosts; 'loop' (a loop device over a file per LV) where device-mapper is missing, as in the lab."),
  'storage.loopDataDir': text('/var/lib/hostvisor/loop-lvs',
    "loop activation: where each LV's data file lives; must be shared by all hosts, like the SAN it stands in for."),
  'storage.loopLinkDir': text('/run/hostvisor/storage/loop',
    'loop activation: per-host links to the attached loop devices; on /run so a reboot forgets them, as it forgets loop devices.'),
  'storage.lvmTimeoutMs': amount(60_000,
    'An LVM command on a hung SAN must not hang the agent (VDSM has no limit).'),
  'storage.qemuImgTimeoutMs': amount(600_000,
    'Preallocating a large image takes minutes.'),
  'storage.ioTimeoutMs': amount(10_000,
    "Metadata slot reads and writes, truncate, losetup; matches sanlock's io_timeout."),
  'storage.extentSizeMiB': amount(128,
    "VDSM's VG extent size. Labs use a few MiB so that small chunks are not rounded up to 128 MiB."),
  'storage.thinInitialSizeMiB': amount(2560,
    "A new thin (COW sparse) block volume's first LV size: VDSM's chunk."),
  'storage.maxSizeFactor': amount(1.1,
    'A volume never grows past this × its virtual size (qcow2 metadata needs a little more than the data).'),
  'storage.sanlockIoTimeoutSec': amount(10,
    "sanlock's io_timeout, VDSM's value: leases expire 8 × it (80 s) after a host stops renewing. Labs use 1–2 s."),
  'storage.spmWatchIntervalMs': amount(2_000,
    'How often the SPM checks that it still holds its lease (besides sanlock\'s own signal).'),
  'storage.filePreallocation': oneOf(['falloc', 'full'], 'falloc',
    "How PREALLOCATED volumes on file domains are allocated: 'falloc' (fallocate; instant where the file system supports it) or 'full' (zeros are written, as glibc does on NFSv3 and other file systems without fallocate; slow, and a Task.stop cuts it short)."),
  'storage.taskShutdownWaitMs': amount(30_000,
    'On agent shutdown, running SPM tasks get this long to finish; those still running are then stopped and rolled back (again at most this long). Any left are recovered by the next spmStart.'),
  'storage.monitorIntervalMs': amount(10_000,
    "VDSM's domain monitor interval: each connected domain's metadata is read (O_DIRECT) this long after the previous check ended; Host.getStorageRepoStats reports it."),
  'storage.monitorReadTimeoutMs': amount(10_000,
    "A check step (the read, the activation, the refresh) with no answer by then marks the domain invalid (2001/379). sanlock's io_timeout: slower storage is already failing its lease renewals."),
  'storage.monitorRefreshIntervalMs': amount(60_000,
    'How often the monitor refreshes free space (and the block metadata version): stat -f, or vgs, which scans the domain\'s PVs; space changes slowly.'),
  'thinp.chunkMiB': amount(2560,
    "VDSM's volume_utilization_chunk_mb: how much a thin volume grows per extension."),
  'thinp.percent': amount(20,
    "VDSM's volume_utilization_percent: extend when less than (100 − percent) % of a chunk is left (2048 MiB by default)."),
  'thinp.pollMs': amount(2_000,
    "VDSM's watermark interval: the fallback check when no block-threshold event came."),
  'thinp.retryAfterMs': amount(2_000,
    "VDSM's extend_timeout: an extension not finished by then may be asked again (lvextend is idempotent)."),
  'thinp.extendTimeoutMs': amount(60_000,
    'How long one extension request waits for the SPM before failing (the poll asks again).'),
  'mailbox.replyPollMs': amount(25,
    'How often a waiting host reads its replies; reading one 4 KiB block is cheap and sets the round trip.'),
  'mailbox.eventPollMs': amount(50,
    'How often the SPM reads the event block for new requests (a full scan runs every 2 s anyway).'),
  'network.confDir': text('/var/lib/hostvisor/netconf',
    'Like /var/lib/vdsm/persistence/netconf: running.json (what the engine last set) and safe.json (what the host returns to at boot), written atomically.'),
  'network.runDir': text('/run/hostvisor/network',
    'DHCP client pid, lease and log files; on tmpfs, so a reboot forgets clients that no longer run.'),
  'network.resolvConf': text('/etc/resolv.conf',
    "Where the defaultRoute network's nameservers are written (and restored from on rollback)."),
  'network.ipTimeoutMs': amount(10_000,
    'One ip command normally takes milliseconds; a hung one (a wedged driver) must not hang setupNetworks.'),
  'network.dhcpTimeoutMs': amount(30_000,
    'Long enough for a few DISCOVERs to a server that ping-checks addresses first; a network without a lease then fails and rolls back.'),
  'network.dhcpClient': oneOf(['busybox'], 'busybox',
    "busybox's udhcpc: on every Debian host (busybox-static), unlike dhclient (deprecated upstream) or dhcpcd (not installed by default)."),
  'network.rollbackAttempts': count(2,
    'A second convergence pass fixes what the kernel changed under the first (routes dropped with their addresses); more would hide a real problem.'),
  'network.rollbackTimeoutMs': amount(20_000,
    'A rollback is tens of ip commands (ms each) and perhaps a DHCP restart; past this it starts nothing new and reports what still differs. It bounds how long a stopping agent waits for a setupNetworks in flight, well within the unit\'s TimeoutStopSec=60.'),
  'network.restoreTimeoutMs': amount(120_000,
    '`hostvisor restore-networks` at boot gives up (exit 1, no marker) after this: room for tens of ip commands and a DHCP lease or two, within the unit\'s TimeoutStartSec.'),
  'virt.domainType': oneOf(['auto', 'kvm', 'qemu'], 'auto',
    "Domain type for new VMs. 'auto' picks kvm when /dev/kvm works and qemu (TCG) otherwise; labs without real KVM force 'qemu'."),
  'log.level': oneOf(['debug', 'info', 'warn', 'error'], 'info',
    'Structured JSON logs; debug adds per-call detail.'),
} satisfies Record<string, Setting>;

export type SettingKey = keyof typeof SETTINGS;
export type Config = { [K in SettingKey]: Static<(typeof SETTINGS)[K]> };
