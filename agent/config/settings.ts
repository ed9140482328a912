// Every tunable of hostvisord, with its default and the reason for it.
// This table is the one place tunables are declared; packaging/agent.toml and
// docs/config.md are generated from it (`node dist/agent/main.js --print-settings toml|md`).
//
// Operators override values in /etc/hostvisor/agent.toml (or the file named by
// $HOSTVISOR_CONFIG); unknown keys are rejected so typos surface.

export interface Setting<T> {
  default: T;
  why: string;
}

export const SETTINGS = {
  'libvirt.uri': {
    default: 'qemu:///system',
    why: 'The system QEMU driver is what runs production VMs; tests may point at test:///default.',
  },
  'libvirt.callTimeoutMs': {
    default: 30_000,
    why: 'Upper bound for one ordinary libvirt call; a hung libvirtd must not hang the agent. Long calls (migration, shutdown) set their own.',
  },
  'libvirt.keepAliveIntervalSec': {
    default: 5,
    why: "libvirt's own default: a dead libvirtd is noticed within about interval × (count + 1) = 30 s without flooding it.",
  },
  'libvirt.keepAliveCount': {
    default: 5,
    why: 'See keepAliveIntervalSec.',
  },
  'libvirt.reconnectInitialMs': {
    default: 250,
    why: 'A restarted libvirtd usually answers within a second; start retrying quickly.',
  },
  'libvirt.reconnectMaxMs': {
    default: 10_000,
    why: 'Cap on the backoff so the agent reconnects within 10 s of libvirtd coming back, without spinning while it is down.',
  },
  'rpc.host': {
    default: '::',
    why: 'Listen on every address, as VDSM does; engines reach hosts over their management network.',
  },
  'rpc.port': {
    default: 54321,
    why: "VDSM's port, so firewalls and engines configured for VDSM need no change.",
  },
  'rpc.maxMessageBytes': {
    default: 8 * 1024 * 1024,
    why: 'A domain XML with many devices fits easily; a larger frame is refused (WebSocket close 1009) before it is buffered whole.',
  },
  'rpc.requestTimeoutMs': {
    default: 60_000,
    why: "VDSM's request timeout. Long operations (VM.create, migration) return at once and report through events.",
  },
  'rpc.maxInFlightPerConnection': {
    default: 256,
    why: 'Backpressure: past this many unanswered requests the agent stops reading the connection until answers drain.',
  },
  'rpc.sendHighWaterBytes': {
    default: 16 * 1024 * 1024,
    why: 'Backpressure: a client that does not read its answers stops being read once this much is queued for it.',
  },
  'rpc.tlsHandshakeTimeoutMs': {
    default: 10_000,
    why: "VDSM's TLS handshake timeout: a peer that stalls the handshake cannot hold a socket for long.",
  },
  'pki.dir': {
    default: '/etc/pki/hostvisor',
    why: 'Like /etc/pki/vdsm: certs/cacert.pem, certs/hostcert.pem and keys/hostkey.pem.',
  },
  'pki.createDevCa': {
    default: true,
    why: 'A fresh host gets a development CA and certificates if it has none, so it is usable at once. Production hosts get certificates from the engine CA; set false there.',
  },
  'stats.vmIntervalMs': {
    default: 15_000,
    why: "VDSM's sampling period: one bulk getAllDomainStats call per interval for all VMs.",
  },
  'stats.hostIntervalMs': {
    default: 15_000,
    why: 'Host CPU, memory and NIC rates are computed over this interval.',
  },
  'vm.destroyTimeoutMs': {
    default: 30_000,
    why: 'Graceful destroy waits for QEMU to flush; past this the agent destroys forcibly.',
  },
  'vm.shutdownStepTimeoutMs': {
    default: 120_000,
    why: "VDSM's sys_shutdown_timeout: how long each shutdown method (guest agent, ACPI) gets before the next.",
  },
  'vm.hotunplugTimeoutMs': {
    default: 30_000,
    why: "VDSM's hot-unplug timeout: the guest must release the device within it.",
  },
  'systemd.watchdogFraction': {
    default: 0.5,
    why: 'WATCHDOG=1 is sent at this fraction of WATCHDOG_USEC, as sd_watchdog_enabled(3) advises.',
  },
  'hooks.dir': {
    default: '/usr/libexec/hostvisor/hooks',
    why: "Like VDSM's /usr/libexec/vdsm/hooks: one directory per hook point, holding executables.",
  },
  'hooks.timeoutMs': {
    default: 60_000,
    why: 'A hook that hangs is killed (its whole process group) after this, so it cannot hang the agent. VDSM has no limit.',
  },
  'hooks.timeoutOverrides': {
    default: '',
    why: 'Per-point timeouts, e.g. "before_vm_start=120000,after_get_all_vm_stats=5000"; empty = none.',
  },
  'hooks.outputCapBytes': {
    default: 64 * 1024,
    why: 'How much of a hook\'s stderr is kept and logged; the rest is read and dropped.',
  },
  'hooks.pythonPath': {
    default: '',
    why: "Where our `hooking` Python module lives (put on PYTHONPATH); empty = the hooks/lib folder of this installation.",
  },
  'hooks.runDir': {
    default: '/run/hostvisor',
    why: 'Launch flags files live at <runDir>/<vmId>/launchflags while before_vm_start runs, as VDSM keeps them under /run/vdsm.',
  },
  'storage.activation': {
    default: 'lvm' as 'lvm' | 'loop',
    why: "How block volumes become devices: 'lvm' (lvchange, device-mapper) on real hosts; 'loop' (a loop device over a file per LV) where device-mapper is missing, as in the lab.",
  },
  'storage.loopDataDir': {
    default: '/var/lib/hostvisor/loop-lvs',
    why: "loop activation: where each LV's data file lives; must be shared by all hosts, like the SAN it stands in for.",
  },
  'storage.loopLinkDir': {
    default: '/run/hostvisor/storage/loop',
    why: 'loop activation: per-host links to the attached loop devices; on /run so a reboot forgets them, as it forgets loop devices.',
  },
  'storage.lvmTimeoutMs': {
    default: 60_000,
    why: 'An LVM command on a hung SAN must not hang the agent (VDSM has no limit).',
  },
  'storage.qemuImgTimeoutMs': {
    default: 600_000,
    why: 'Preallocating a large image takes minutes.',
  },
  'storage.ioTimeoutMs': {
    default: 10_000,
    why: "Metadata slot reads and writes, truncate, losetup; matches sanlock's io_timeout.",
  },
  'storage.extentSizeMiB': {
    default: 128,
    why: "VDSM's VG extent size. Labs use a few MiB so that small chunks are not rounded up to 128 MiB.",
  },
  'storage.thinInitialSizeMiB': {
    default: 2560,
    why: "A new thin (COW sparse) block volume's first LV size: VDSM's chunk.",
  },
  'storage.maxSizeFactor': {
    default: 1.1,
    why: 'A volume never grows past this × its virtual size (qcow2 metadata needs a little more than the data).',
  },
  'storage.sanlockIoTimeoutSec': {
    default: 10,
    why: "sanlock's io_timeout, VDSM's value: leases expire 8 × it (80 s) after a host stops renewing. Labs use 1–2 s.",
  },
  'storage.spmWatchIntervalMs': {
    default: 2_000,
    why: 'How often the SPM checks that it still holds its lease (besides sanlock\'s own signal).',
  },
  'storage.filePreallocation': {
    default: 'falloc' as 'falloc' | 'full',
    why: "How PREALLOCATED volumes on file domains are allocated: 'falloc' (fallocate; instant where the file system supports it) or 'full' (zeros are written, as glibc does on NFSv3 and other file systems without fallocate; slow, and a Task.stop cuts it short).",
  },
  'storage.taskShutdownWaitMs': {
    default: 30_000,
    why: 'On agent shutdown, running SPM tasks get this long to finish; those still running are then stopped and rolled back (again at most this long). Any left are recovered by the next spmStart.',
  },
  'storage.monitorIntervalMs': {
    default: 10_000,
    why: "VDSM's domain monitor interval: each connected domain's metadata is read (O_DIRECT) this long after the previous check ended; Host.getStorageRepoStats reports it.",
  },
  'storage.monitorReadTimeoutMs': {
    default: 10_000,
    why: "A check step (the read, the activation, the refresh) with no answer by then marks the domain invalid (2001/379). sanlock's io_timeout: slower storage is already failing its lease renewals.",
  },
  'storage.monitorRefreshIntervalMs': {
    default: 60_000,
    why: 'How often the monitor refreshes free space (and the block metadata version): stat -f, or vgs, which scans the domain\'s PVs; space changes slowly.',
  },
  'thinp.chunkMiB': {
    default: 2560,
    why: "VDSM's volume_utilization_chunk_mb: how much a thin volume grows per extension.",
  },
  'thinp.percent': {
    default: 20,
    why: "VDSM's volume_utilization_percent: extend when less than (100 − percent) % of a chunk is left (2048 MiB by default).",
  },
  'thinp.pollMs': {
    default: 2_000,
    why: "VDSM's watermark interval: the fallback check when no block-threshold event came.",
  },
  'thinp.retryAfterMs': {
    default: 2_000,
    why: "VDSM's extend_timeout: an extension not finished by then may be asked again (lvextend is idempotent).",
  },
  'thinp.extendTimeoutMs': {
    default: 60_000,
    why: 'How long one extension request waits for the SPM before failing (the poll asks again).',
  },
  'mailbox.replyPollMs': {
    default: 25,
    why: 'How often a waiting host reads its replies; reading one 4 KiB block is cheap and sets the round trip.',
  },
  'mailbox.eventPollMs': {
    default: 50,
    why: 'How often the SPM reads the event block for new requests (a full scan runs every 2 s anyway).',
  },
  'network.confDir': {
    default: '/var/lib/hostvisor/netconf',
    why: 'Like /var/lib/vdsm/persistence/netconf: running.json (what the engine last set) and safe.json (what the host returns to at boot), written atomically.',
  },
  'network.runDir': {
    default: '/run/hostvisor/network',
    why: 'DHCP client pid, lease and log files; on tmpfs, so a reboot forgets clients that no longer run.',
  },
  'network.resolvConf': {
    default: '/etc/resolv.conf',
    why: "Where the defaultRoute network's nameservers are written (and restored from on rollback).",
  },
  'network.ipTimeoutMs': {
    default: 10_000,
    why: 'One ip command normally takes milliseconds; a hung one (a wedged driver) must not hang setupNetworks.',
  },
  'network.dhcpTimeoutMs': {
    default: 30_000,
    why: 'Long enough for a few DISCOVERs to a server that ping-checks addresses first; a network without a lease then fails and rolls back.',
  },
  'network.dhcpClient': {
    default: 'busybox' as 'busybox',
    why: "busybox's udhcpc: on every Debian host (busybox-static), unlike dhclient (deprecated upstream) or dhcpcd (not installed by default).",
  },
  'network.rollbackAttempts': {
    default: 2,
    why: 'A second convergence pass fixes what the kernel changed under the first (routes dropped with their addresses); more would hide a real problem.',
  },
  'network.rollbackTimeoutMs': {
    default: 20_000,
    why: 'A rollback is tens of ip commands (ms each) and perhaps a DHCP restart; past this it starts nothing new and reports what still differs. It bounds how long a stopping agent waits for a setupNetworks in flight, well within the unit\'s TimeoutStopSec=60.',
  },
  'network.restoreTimeoutMs': {
    default: 120_000,
    why: '`hostvisor restore-networks` at boot gives up (exit 1, no marker) after this: room for tens of ip commands and a DHCP lease or two, within the unit\'s TimeoutStartSec.',
  },
  'virt.domainType': {
    default: 'auto' as 'auto' | 'kvm' | 'qemu',
    why: "Domain type for new VMs. 'auto' picks kvm when /dev/kvm works and qemu (TCG) otherwise; labs without real KVM force 'qemu'.",
  },
  'log.level': {
    default: 'info' as 'debug' | 'info' | 'warn' | 'error',
    why: 'Structured JSON logs; debug adds per-call detail.',
  },
} satisfies Record<string, Setting<unknown>>;

export type SettingKey = keyof typeof SETTINGS;
export type Config = { [K in SettingKey]: (typeof SETTINGS)[K]['default'] };
