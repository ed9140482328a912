// The daemon's `--settings FILE`: a JSON object of decision settings overriding their defaults,
// e.g. {"pollIntervalMs": 1000, "nonResponsiveGraceMs": 8000}. Names, units and ranges are those
// of controller/decision-settings.ts, and resolveDecisionSettings checks every one: an unknown
// name or a value out of range stops the start (an operator's mistake, said plainly), rather
// than a controller running on settings nobody meant.
import { readFileSync } from 'node:fs';
import { DecisionSettingError, resolveDecisionSettings, type DecisionSettings } from './decision-settings.js';

/** The overrides in FILE, as given (each already checked), and the settings they make. */
export function loadDecisionSettingsFile(file: string): { overrides: Record<string, number>; settings: DecisionSettings } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DecisionSettingError('--settings', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new DecisionSettingError('--settings', `${file} is not JSON: ${(e as Error).message}`, { cause: e });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new DecisionSettingError('--settings', `${file} must hold a JSON object of setting names to numbers`);
  }
  const settings = resolveDecisionSettings(parsed as Record<string, unknown>);
  return { overrides: { ...(parsed as Record<string, number>) }, settings };
}
