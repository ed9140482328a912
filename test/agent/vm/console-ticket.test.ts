// Issue 13 must-show 8 at the agent: a VNC display refuses everyone until
// VM.setTicket; with the ticket an RFB handshake (VNC authentication, then
// ServerInit) succeeds before the TTL and fails after it, and a wrong password
// fails. VM.setTicket answers where the display listens (vm.displayListen).
import t from 'tap';
import { connectClient, startAgent, StatusWatch, tinyGuest } from '../harness.js';
import { desEcb, rfbHandshake } from '../../lab/rfb-client.js';

t.test('the DES under VNC authentication matches the standard test vector', async (t) => {
  // FIPS 81 example: key 0123456789ABCDEF, "Now is t" -> 3FA40E8A984D4815.
  const out = desEcb(Buffer.from('0123456789abcdef', 'hex'), Buffer.from('4e6f772069732074', 'hex'));
  t.equal(out.toString('hex'), '3fa40e8a984d4815');
});

t.test('a console ticket opens the VNC display before its TTL and not after', async (t) => {
  const { config, stop } = await startAgent({ 'vm.displayListen': '127.0.0.1' });
  t.teardown(stop);
  const client = await connectClient(config);
  t.teardown(() => client.close());
  const watch = new StatusWatch(client);
  const g = tinyGuest('hv-it-console', { graphics: 'vnc' });
  t.teardown(() => client.call('VM.destroy', { vmID: g.vmID }).catch(() => {}));
  await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
  await watch.wait(g.vmID, 'Up', 30_000);

  // The display QEMU started with has an expired random password: nobody gets in before a ticket.
  const xml = (await client.call('Host.dumpxmls', { vmList: [g.vmID] })).domxmls[g.vmID]!;
  const port = Number(/<graphics type='vnc' port='(\d+)'/.exec(xml)?.[1]);
  t.ok(port >= 5900, `the display listens on port ${port}`);
  const before = await rfbHandshake('127.0.0.1', port, '');
  t.notOk(before.ok, `before any ticket the display refuses (${before.reason})`);

  const ttl = 4;
  const r = await client.call('VM.setTicket', { vmID: g.vmID, password: 'Tk3t-ok', ttl });
  const setAt = Date.now();
  t.same(r.display, { type: 'vnc', port, listen: '127.0.0.1' }, 'the answer says where to connect');
  const ok = await rfbHandshake('127.0.0.1', port, 'Tk3t-ok');
  t.ok(ok.ok, `with the ticket the handshake succeeds ${Date.now() - setAt} ms after it was set`);
  t.ok(ok.desktop && ok.desktop.width > 0 && ok.desktop.height > 0, `and a session begins (ServerInit: "${ok.desktop?.name}" ${ok.desktop?.width}x${ok.desktop?.height})`);
  const wrong = await rfbHandshake('127.0.0.1', port, 'wrong');
  t.notOk(wrong.ok, `a wrong password fails (${wrong.reason})`);

  await new Promise((res) => setTimeout(res, Math.max(0, setAt + (ttl + 1.5) * 1000 - Date.now())));
  const late = await rfbHandshake('127.0.0.1', port, 'Tk3t-ok');
  t.notOk(late.ok, `after the TTL the same password fails (${late.reason})`);

  const again = await client.call('VM.setTicket', { vmID: g.vmID, password: 'second', ttl: 60 });
  t.equal(again.display.port, port, 'a new ticket for the same display');
  t.ok((await rfbHandshake('127.0.0.1', port, 'second')).ok, 'a new ticket opens it again');
  t.notOk((await rfbHandshake('127.0.0.1', port, 'Tk3t-ok')).ok, 'the old one stays closed');
});
