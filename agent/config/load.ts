// Loads hostvisord's configuration: defaults from settings.ts, overridden by
// the JSON config file. Bad values stop the daemon at start with a clear message.
import { readFileSync, existsSync } from 'node:fs';
import { SETTINGS, type Config, type SettingKey } from './settings.js';

export const DEFAULT_CONFIG_PATH = '/etc/hostvisor/hostvisord.json';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function defaults(): Config {
  const out: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(SETTINGS)) out[k] = s.default;
  return out as Config;
}

export function applyOverrides(base: Config, overrides: Record<string, unknown>, source: string): Config {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(overrides)) {
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
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError(`${path}: not valid JSON`, { cause: e });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`${path}: must be a JSON object`);
  return applyOverrides(base, parsed as Record<string, unknown>, path);
}

/** Markdown table of every setting, for docs/config.md. */
export function settingsMarkdown(): string {
  const rows = Object.entries(SETTINGS).map(([k, s]) => `| \`${k}\` | \`${JSON.stringify(s.default)}\` | ${s.why} |`);
  return ['| setting | default | why |', '| --- | --- | --- |', ...rows].join('\n') + '\n';
}
