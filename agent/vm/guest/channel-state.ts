// The guest agent channel's state in a running domain's live XML
// (<target type='virtio' name='org.qemu.guest_agent.0' state='connected'/>):
// how a VM found already running learns whether qemu-ga is there, since the
// agent-lifecycle event came before we listened.
import { parseXml } from '../xml.js';

export const AGENT_CHANNEL = 'org.qemu.guest_agent.0';

export function agentChannelState(xml: string): 'connected' | 'disconnected' | undefined {
  const channels = parseXml(xml).element('devices')?.elements('channel') ?? [];
  const target = channels.map((c) => c.element('target')).find((t) => t?.attr('name') === AGENT_CHANNEL);
  const state = target?.attr('state');
  return state === 'connected' || state === 'disconnected' ? state : undefined;
}
