// The libvirt binding on libvirt's in-process test driver (test:///default):
// no daemon involved, so these run anywhere libvirt is installed.
import t from 'tap';
import { execFile } from 'node:child_process';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Connection, LibvirtError, LibvirtUnavailableError, enums, type Domain, type DomainEvent } from '../../../agent/libvirt/index.js';

const run = promisify(execFile);
const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const { ErrorNumber, DomainEventType, DomainState, DomainMetadataType } = enums;

function testDomainXml(name: string): string {
  return `<domain type='test'><name>${name}</name><memory>65536</memory><os><type>hvm</type></os></domain>`;
}

t.test('64 concurrent failing calls each reject with their own libvirt error code', async (t) => {
  const conn = await Connection.open('test:///default');
  t.teardown(() => conn.close());
  const [dom] = await conn.listAllDomains();
  t.ok(dom);
  // Seven different failures, each with a distinct libvirt code, interleaved.
  const kinds: { expect: number; call: () => Promise<unknown> }[] = [
    { expect: ErrorNumber.ERR_NO_DOMAIN, call: () => conn.lookupByName('no-such-domain') },
    { expect: ErrorNumber.ERR_XML_DETAIL, call: () => conn.defineXML('<domain') },
    { expect: ErrorNumber.ERR_INVALID_ARG, call: () => conn.lookupByUUID('not-a-uuid') },
    { expect: ErrorNumber.ERR_INTERNAL_ERROR, call: () => dom!.resume() },
    { expect: ErrorNumber.ERR_NO_SUPPORT, call: () => dom!.setBlockThreshold('vda', 1) },
    { expect: ErrorNumber.ERR_ARGUMENT_UNSUPPORTED, call: () => dom!.migrateToURI3('test:///x', {}) },
    { expect: ErrorNumber.ERR_INVALID_ARG, call: () => dom!.blockInfo('no-disk') },
  ];
  const calls = Array.from({ length: 64 }, (_, i) => kinds[i % kinds.length]!);
  const results = await Promise.allSettled(calls.map((k) => k.call()));
  let own = 0;
  results.forEach((r, i) => {
    if (r.status === 'rejected' && r.reason instanceof LibvirtError && r.reason.code === calls[i]!.expect) own++;
    else t.fail(`call ${i}: expected code ${calls[i]!.expect}, got ${r.status === 'rejected' ? (r.reason as LibvirtError).code : 'success'}`);
  });
  t.equal(own, 64, 'every rejection carries the error of the call that failed');
  const sample = results[0] as PromiseRejectedResult;
  t.equal((sample.reason as LibvirtError).domain, enums.ErrorDomain.TEST, 'libvirt error domain is kept');
  t.match((sample.reason as LibvirtError).message, /Domain not found/, 'libvirt message is kept');
});

t.test('a failed open rejects with code 5 (NO_CONNECT) and libvirt\'s message', async (t) => {
  const err = await Connection.open('bogus:///nowhere').then(() => null, (e: unknown) => e);
  t.type(err, LibvirtError);
  t.equal((err as LibvirtError).code, ErrorNumber.ERR_NO_CONNECT);
  t.match((err as LibvirtError).message, /no connection driver available for bogus:\/\/\/nowhere/);
});

t.test('lifecycle events arrive for define, start, suspend, resume and destroy, in order', async (t) => {
  const conn = await Connection.open('test:///default');
  t.teardown(() => conn.close());
  const seen: DomainEvent<'lifecycle'>[] = [];
  const want = [DomainEventType.DEFINED, DomainEventType.STARTED, DomainEventType.SUSPENDED, DomainEventType.RESUMED, DomainEventType.STOPPED];
  let notify: () => void = () => {};
  const allSeen = new Promise<void>((resolve) => { notify = () => { if (seen.length >= want.length) resolve(); }; });
  const sub = await conn.subscribe('lifecycle', (ev) => {
    if (ev.domain.name !== 'hv-events') return;
    seen.push(ev);
    notify();
  });
  const dom = await conn.defineXML(testDomainXml('hv-events'));
  await dom.create();
  await dom.suspend();
  t.equal((await dom.state()).state, DomainState.PAUSED);
  await dom.resume();
  await dom.destroy();
  await Promise.race([allSeen, new Promise((_, rej) => setTimeout(() => rej(new Error('events timed out')), 5000))]);
  t.same(seen.map((e) => e.event), want);
  t.equal(seen[0]!.domain.uuid, dom.uuid, 'event names the domain by uuid');
  await sub.close();
  await dom.undefine();
});

t.test('metadata round-trips in our namespace, and missing metadata reads as null', async (t) => {
  const conn = await Connection.open('test:///default');
  t.teardown(() => conn.close());
  const dom = await conn.defineXML(testDomainXml('hv-meta'));
  t.teardown(() => dom.undefine());
  const ns = 'http://hostvisor.org/xmlns/vm/1.0';
  t.equal(await dom.metadata(DomainMetadataType.ELEMENT, ns), null);
  await dom.setMetadata(DomainMetadataType.ELEMENT, '<vm><prop name="x">1</prop></vm>', 'hv', ns);
  t.match(await dom.metadata(DomainMetadataType.ELEMENT, ns), /<vm>\s*<prop name="x">1<\/prop>\s*<\/vm>/);
  t.match(await dom.xml(), /hostvisor\.org\/xmlns\/vm/);
});

t.test('stats, host info and typed params decode into plain values', async (t) => {
  const conn = await Connection.open('test:///default');
  t.teardown(() => conn.close());
  const stats = await conn.getAllDomainStats();
  t.ok(stats.length >= 1);
  t.equal(stats[0]!.stats['state.state'], DomainState.RUNNING);
  const info = await conn.nodeInfo();
  t.ok(info.cpus > 0 && info.memoryKiB > 0);
  const [dom] = await conn.listAllDomains();
  const di = await dom!.info();
  t.equal(di.state, DomainState.RUNNING);
  t.equal(typeof di.cpuTimeNs === 'bigint' || typeof di.cpuTimeNs === 'number', true, 'ullong becomes number or BigInt');
  t.match(await conn.capabilities(), /<capabilities>/);
});

t.test('calls after close fail with LibvirtUnavailableError, not a crash', async (t) => {
  const conn = await Connection.open('test:///default');
  const [dom] = await conn.listAllDomains();
  await conn.subscribe('lifecycle', () => {});
  const closing = conn.close();
  await t.rejects(conn.hostname(), LibvirtUnavailableError, 'refused as soon as close() has begun');
  await closing;
  await t.rejects(dom!.info(), LibvirtUnavailableError, 'a domain call rejects (never throws synchronously)');
  await t.rejects(conn.hostname(), LibvirtUnavailableError);
  const [a, b] = await Promise.allSettled([conn.close(), conn.close()]);
  t.same([a.status, b.status], ['fulfilled', 'fulfilled'], 'close() again, even concurrently, is harmless');
});

t.test('100k calls with forced GC: no crash, no wrong error, bounded memory', async (t) => {
  const { stdout } = await run(process.execPath, ['--expose-gc', join(fixtures, 'gc-stress.js'), '100000'], { timeout: 180_000 });
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as { done: number; failures: number; wrong: number; rssStartMiB: number; rssEndMiB: number };
  t.equal(r.done, 100_000);
  t.equal(r.failures, 25_000, 'every lookup of a missing domain failed with NO_DOMAIN');
  t.equal(r.wrong, 0);
  t.ok(r.rssEndMiB - r.rssStartMiB < 64, `RSS grew ${(r.rssEndMiB - r.rssStartMiB).toFixed(1)} MiB`);
});

t.test('Node exits by itself after close, even with domain handles still referenced', async (t) => {
  for (const mode of ['close', 'dropped']) {
    const started = Date.now();
    const { stdout } = await run(process.execPath, [join(fixtures, 'exit-after-close.js'), mode], { timeout: 10_000 });
    t.match(stdout, /closed 1/, `${mode}: ran to the end`);
    t.ok(Date.now() - started < 10_000, `${mode}: exited on its own`);
  }
});

t.test('an awaited subscription keeps Node alive', async (t) => {
  const child = spawn(process.execPath, [join(fixtures, 'exit-after-close.js'), 'await'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const result = await Promise.race([exited, new Promise<'alive'>((r) => setTimeout(() => r('alive'), 1500))]);
  t.equal(result, 'alive', 'still running 1.5 s after subscribing (an unref\'d loop would exit with code 13)');
  t.match(out, /subscribed/);
  child.kill('SIGKILL');
  await exited;
});

t.test('a listener that throws never aborts the process', async (t) => {
  const { stdout, stderr } = await run(process.execPath, [join(fixtures, 'throwing-listener.js')], { timeout: 10_000 });
  const r = JSON.parse(stdout.trim()) as { contained: number; rawCalls: number; alive: boolean };
  t.equal(r.contained, 2, 'facade reports both throws as listener-error');
  t.equal(r.rawCalls, 2, 'addon kept delivering after a raw listener threw');
  t.match(stderr, /raw listener boom/, 'the raw throw is reported on stderr');
});

t.test('typed params are checked against libvirt\'s documented types', async (t) => {
  const { encodeTypedParams, enums: e } = await import('../../../agent/libvirt/index.js');
  t.same(encodeTypedParams({ migrate_uri: 'tcp://h', bandwidth: 100, persistent_xml: undefined }), [
    ['migrate_uri', e.TypedParameterType.STRING, 'tcp://h'],
    ['bandwidth', e.TypedParameterType.ULLONG, 100],
  ]);
  t.throws(() => encodeTypedParams({ bandwidth: 'fast' }), /must be ULLONG/);
  t.throws(() => encodeTypedParams({ no_such_param: 1 }), /unknown typed parameter/);
});

export type { Domain };
