// Loads hostvisord's configuration: defaults from settings.ts, overridden by
// the TOML config file. Bad values stop the daemon at start with a clear message.
import { readFileSync, existsSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { SETTINGS, type Config, type SettingKey } from './settings.js';

export const DEFAULT_CONFIG_PATH = '/etc/hostvisor/agent.toml';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function defaults(): Config {
  const out: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(SETTINGS)) out[k] = s.default;
  return out as Config;
}

/** TOML tables map to dotted keys: [rpc] port = 1 is "rpc.port". */
function flatten(obj: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && !(key in SETTINGS)) flatten(v as Record<string, unknown>, key, out);
    else out[key] = typeof v === 'bigint' ? Number(v) : v;
  }
  return out;
}

export function applyOverrides(base: Config, overrides: Record<string, unknown>, source: string): Config {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(flatten(overrides))) {
    if (!(k in SETTINGS)) throw new ConfigError(`${source}: unknown setting "${k}"`);
    const def = SETTINGS[k as SettingKey].default;
    if (typeof v !== typeof def) throw new ConfigError(`${source}: "${k}" must be a ${typeof def}, got ${JSON.stringify(v)}`);
    if (typeof v === 'number' && (!Number.isFinite(v) || v < 0)) throw new ConfigError(`${source}: "${k}" must be a non-negative number`);
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
  const rows = Object.entries(SETTINGS).map(([k, s]) => `| \`${k}\` | \`${JSON.stringify(s.default)}\` | ${s.why} |`);
  return ['| setting | default | why |', '| --- | --- | --- |', ...rows].join('\n') + '\n';
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
    lines.push(`# ${s.why}`, `# ${name} = ${JSON.stringify(s.default)}`);
  }
  return lines.join('\n') + '\n';
}
