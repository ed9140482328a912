import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DECISION_SETTINGS, DecisionSettingError, defaultDecisionSettings, resolveDecisionSettings } from '../../controller/decision-settings.js';
import { loadDecisionSettingsFile } from '../../controller/settings-file.js';
import { scratchDir } from '../agent/harness.js';

t.test('every decision setting has a default within its range, a unit and a reason', async (t) => {
  for (const [name, def] of Object.entries(DECISION_SETTINGS)) {
    t.ok(def.default >= def.min && def.default <= def.max, `${name} default in range`);
    t.ok(def.reason.length > 40, `${name} says why`);
  }
  t.same(defaultDecisionSettings(), Object.fromEntries(Object.entries(DECISION_SETTINGS).map(([k, v]) => [k, v.default])));
});

t.test("the defaults are oVirt's where oVirt has the setting", async (t) => {
  const s = defaultDecisionSettings();
  t.same([s.pollIntervalMs, s.nonResponsiveAttempts, s.nonResponsiveGraceMs, s.spmExtraGraceMs, s.perVmGraceMs, s.recoveryTimeoutMs],
    [3000, 2, 60_000, 20_000, 500, 180_000]);
});

t.test('overrides are checked: unknown names, wrong types, out of range and fractional counts are DecisionSettingError naming the setting', async (t) => {
  t.equal(resolveDecisionSettings({ nonResponsiveGraceMs: 30_000 }).nonResponsiveGraceMs, 30_000);
  t.throws(() => resolveDecisionSettings({ graceMs: 1 }), { name: 'DecisionSettingError', code: 1201, message: /^graceMs: unknown/ });
  t.throws(() => resolveDecisionSettings({ pollIntervalMs: '3s' }), { message: /^pollIntervalMs: must be a number/ });
  t.throws(() => resolveDecisionSettings({ highUtilizationPct: 120 }), { message: /^highUtilizationPct: must be within 50\.\.99/ });
  t.throws(() => resolveDecisionSettings({ nonResponsiveAttempts: 1.5 }), DecisionSettingError);
  t.ok(Object.isFrozen(resolveDecisionSettings()));
});

t.test("the daemon's --settings FILE: a JSON object checked by resolveDecisionSettings; anything else is a DecisionSettingError", async (t) => {
  const dir = scratchDir('hv-settings-');
  const file = (name: string, text: string) => { writeFileSync(join(dir, name), text); return join(dir, name); };
  const ok = loadDecisionSettingsFile(file('ok.json', '{"pollIntervalMs": 1000, "nonResponsiveGraceMs": 8000}'));
  t.same(ok.overrides, { pollIntervalMs: 1000, nonResponsiveGraceMs: 8000 });
  t.same([ok.settings.pollIntervalMs, ok.settings.nonResponsiveGraceMs, ok.settings.perVmGraceMs], [1000, 8000, 500], 'the rest keep their defaults');
  t.throws(() => loadDecisionSettingsFile(file('unknown.json', '{"graceMs": 1}')), { name: 'DecisionSettingError', message: /^graceMs: unknown/ });
  t.throws(() => loadDecisionSettingsFile(file('range.json', '{"pollIntervalMs": 10}')), { name: 'DecisionSettingError', message: /^pollIntervalMs: must be within/ });
  t.throws(() => loadDecisionSettingsFile(file('bad.json', '{pollIntervalMs: 1000')), { name: 'DecisionSettingError', code: 1201, message: /is not JSON/ });
  t.throws(() => loadDecisionSettingsFile(file('array.json', '[1000]')), { name: 'DecisionSettingError', message: /must hold a JSON object/ });
  t.throws(() => loadDecisionSettingsFile(join(dir, 'none.json')), { name: 'DecisionSettingError', message: /cannot read/ });
});
