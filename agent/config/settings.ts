// Every tunable of hostvisord, with its default and the reason for it.
// This table is the one place tunables are declared; packaging/hostvisord.json
// and docs/config.md are derived from it (`node dist/agent/main.js --print-config`).
//
// Operators override values in /etc/hostvisor/hostvisord.json (or the file
// named by $HOSTVISOR_CONFIG); unknown keys are rejected so typos surface.

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
