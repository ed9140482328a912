// Loads hostvisord's configuration: defaults from settings.ts, overridden by
// the TOML config file, each value checked against its setting's schema. A bad
// value stops the daemon at start with a message that names the setting and
// what it allows.
import { readFileSync, existsSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { Check } from '@sinclair/typebox/value';
import { SETTINGS, type Config, type Setting, type SettingKey } from './settings.js';

export const DEFAULT_CONFIG_PATH = '/etc/hostvisor/agent.toml';

/**
 * sysexits.h's EX_CONFIG. The daemon exits with it on a ConfigError, and the
 * unit does not restart a daemon that cannot start with its configuration
 * (RestartPreventExitStatus).
 */
export const CONFIG_ERROR_CODE = 78;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = CONFIG_ERROR_CODE;
  /** The setting at fault, when one is. */
  readonly setting: string | undefined;
  /** The values the setting allows, for one that takes one of a few. */
  readonly allowed: readonly unknown[] | undefined;

  constructor(message: string, o: { cause?: unknown; setting?: string; allowed?: readonly unknown[] } = {}) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.setting = o.setting;
    this.allowed = o.allowed;
  }
}

export function defaults(): Config {
  const out: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(SETTINGS)) out[k] = s.default;
  return out as Config;
}

/** The values a setting that takes one of a few words allows; undefined for the others. */
export function allowedValues(s: Setting): readonly unknown[] | undefined {
  if (s.const !== undefined) return [s.const]; // a union of one word is that word's literal
  const members = s.anyOf as { const?: unknown }[] | undefined;
  return members?.every((m) => m.const !== undefined) ? members.map((m) => m.const) : undefined;
}

/** A value as the operator wrote it (JSON would print inf and nan as null). */
const shown = (v: unknown): string => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : JSON.stringify(v));

/** What a setting takes, in words: `one of "lvm", "loop"`, `a number >= 0`, `an integer 0..65535`. */
export function describeSetting(s: Setting): string {
  const allowed = allowedValues(s);
  if (allowed) return allowed.length === 1 ? JSON.stringify(allowed[0]) : `one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`;
  const range = s.maximum !== undefined ? ` ${s.minimum ?? ''}..${s.maximum}` : s.minimum !== undefined ? ` >= ${s.minimum}` : '';
  switch (s.type) {
    case 'integer': return `an integer${range}`;
    case 'number': return `a number${range}`;
    case 'boolean': return 'true or false';
    case 'string': return 'a string';
    default: return String(s.type);
  }
}

/** TOML tables map to dotted keys: [rpc] port = 1 is "rpc.port". */
function flatten(obj: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && !Object.hasOwn(SETTINGS, key)) flatten(v as Record<string, unknown>, key, out);
    else out[key] = typeof v === 'bigint' ? Number(v) : v;
  }
  return out;
}

export function applyOverrides(base: Config, overrides: Record<string, unknown>, source: string): Config {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(flatten(overrides))) {
    if (!Object.hasOwn(SETTINGS, k)) throw new ConfigError(`${source}: unknown setting "${k}"`, { setting: k });
    const s: Setting = SETTINGS[k as SettingKey];
    if (!Check(s, v)) {
      const allowed = allowedValues(s);
      throw new ConfigError(`${source}: ${k} must be ${describeSetting(s)}; got ${shown(v)}`, { setting: k, ...(allowed ? { allowed } : {}) });
    }
    out[k] = v;
  }
  return out as Config;
}

export function loadConfig(path: string = process.env.HOSTVISOR_CONFIG ?? DEFAULT_CONFIG_PATH): Config {
  const base = defaults();
  if (!existsSync(path)) return base;
  let parsed: Record<string, unknown>;
  try {
    parsed = parseToml(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`${path}: not valid TOML: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  return applyOverrides(base, parsed, path);
}

/** Markdown table of every setting, for docs/config.md. */
export function settingsMarkdown(): string {
  const rows = Object.entries(SETTINGS).map(([k, s]) =>
    `| \`${k}\` | \`${JSON.stringify(s.default)}\` | ${describeSetting(s)} | ${s.description} |`);
  return ['| setting | default | takes | why |', '| --- | --- | --- | --- |', ...rows].join('\n') + '\n';
}

/** The documented config file: every setting commented out at its default, grouped by table. */
export function settingsToml(): string {
  const lines = [
    '# /etc/hostvisor/agent.toml: hostvisord configuration.',
    '# Every setting is shown at its default, commented out, with the reason for the default.',
    '# Generated from agent/config/settings.ts (node dist/agent/main.js --print-settings toml).',
  ];
  let table = '';
  for (const [k, s] of Object.entries(SETTINGS)) {
    const [t, name] = k.split('.') as [string, string];
    if (t !== table) { lines.push('', `[${t}]`); table = t; }
    lines.push(`# ${s.description}`);
    if (allowedValues(s)) lines.push(`# Takes ${describeSetting(s)}.`);
    lines.push(`# ${name} = ${JSON.stringify(s.default)}`);
  }
  return lines.join('\n') + '\n';
}
