// Test helper: two real agents on libvirt's test driver (which cannot migrate, so every
// migration really fails in the agent) under an API, and controllers built as main.ts builds
// them with the VM and migration parts, started on demand on that API's store (a second one
// after the first is closed is a controller restart).
import type { Test } from 'tap';
import { resolveDecisionSettings, type DecisionSettings } from '../../../controller/decision-settings.js';
import { installMigration } from '../../../controller/migration/install.js';
import { AgentProcess } from '../../api/client/agent-process.js';
import { credentialsOf } from '../agents/test-hosts.js';
import { startApi, type Api } from '../http/harness.js';
import { startController, type TestController } from '../vms/controller-harness.js';

export interface MaintenanceRig {
  agents: AgentProcess[];
  api: Api;
  settings: DecisionSettings;
  controller(): Promise<TestController>;
}

export async function maintenanceRig(t: Test): Promise<MaintenanceRig> {
  const settings = resolveDecisionSettings({
    pollIntervalMs: 500, pollTimeoutMs: 500, vmListIntervalMs: 1_000, vmStartTimeoutMs: 20_000,
    migrationStatusPollMs: 200, migrationTimeoutMs: 30_000, maintenanceMigrationAttempts: 2,
  });
  const agents = [await AgentProcess.start(), await AgentProcess.start()];
  t.teardown(async () => { for (const a of agents) await a.stop(); });
  const api = await startApi();
  t.teardown(() => api.close());
  return {
    agents, api, settings,
    controller: () => startController({ settings, credentials: credentialsOf(agents[0]!), api,
      install: (runtime, vms, log) => installMigration(runtime, api.store, settings, log, vms, undefined, api.ctx) }),
  };
}
