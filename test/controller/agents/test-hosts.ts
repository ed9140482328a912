// Hosts for the controller's tests: real agent processes on libvirt's test driver, the endpoint
// and credentials the controller reaches them with, and a test-driver node whose domains carry
// Hostvisor metadata, so that a restarted agent finds "its" VMs running again (one Up, one
// Paused) as it would find QEMU guests after a kill -9.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { scratchDir } from '../../agent/harness.js';
import { AgentProcess, type AgentProcessOptions } from '../../api/client/agent-process.js';
import type { AgentEndpoint, ControllerCredentials } from '../../../controller/agents/agent-link.js';

export function endpointOf(hostId: string, agent: AgentProcess): AgentEndpoint {
  return { hostId, address: 'localhost', port: agent.config['rpc.port'] };
}

/** The development PKI's client certificate stands for the controller's. */
export function credentialsOf(agent: AgentProcess): ControllerCredentials {
  return { key: agent.target.key, cert: agent.target.cert, ca: agent.target.ca };
}

export interface FixedVms {
  /** a test:/// node file: every agent opened on it starts with these domains */
  nodeFile: string;
  running: string;
  paused: string;
}

const METADATA = '<metadata><hostvisor:vm xmlns:hostvisor="http://hostvisor.org/xmlns/vm/1.0"><hostvisor:startTime>1700000000000</hostvisor:startTime></hostvisor:vm></metadata>';

function domain(name: string, uuid: string, runstate: number): string {
  return `<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'><name>${name}</name><uuid>${uuid}</uuid>`
    + `<memory>65536</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>${METADATA}<test:runstate>${runstate}</test:runstate></domain>`;
}

/** A node with two managed VMs: one running (libvirt runstate 1), one paused (3). */
export function fixedVmsNode(): FixedVms {
  const running = randomUUID();
  const paused = randomUUID();
  const nodeFile = join(scratchDir('hv-node-'), 'node.xml');
  writeFileSync(nodeFile, `<node>${domain('hv-fixed-up', running, 1)}${domain('hv-fixed-paused', paused, 3)}</node>\n`);
  return { nodeFile, running, paused };
}

/** An agent whose libvirt is the test driver on `nodeFile` (its own copy of those domains, in its own process). */
export function agentOnNode(nodeFile: string, o: AgentProcessOptions = {}): Promise<AgentProcess> {
  return AgentProcess.start({ ...o, overrides: { 'libvirt.uri': `test://${nodeFile}`, ...o.overrides } });
}
