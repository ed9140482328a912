#!/usr/bin/python3
"""Baseline for bench/libvirt-binding.ts: Debian's python3-libvirt (the official
binding, the one VDSM uses) making the same calls on the same domains.

Run by the Node bench as a child process with /usr/bin/python3 (the distro
interpreter that has the libvirt module):

    /usr/bin/python3 bench/libvirt_binding_baseline.py '<config json>'

config: {"uri": "qemu:///system", "names": ["hv-bench-0", ...],
         "window_ms": 2000, "warmup_ms": 300, "max_calls": 200000, "hard_limit_s": 60,
         "event_loop": false}

Protocol (one JSON object per line on stdout, nothing else is printed there):
  after connecting it prints  {"ready": true, ...};
  then, for each stdin line {"call": "getInfo"|"getXMLDesc"|"getAllDomainStats", "threads": N}
  it runs a warm-up and a measured window and prints {"cell": "<call>_<N>", "cps": ..., ...};
  on stdin EOF (or {"quit": true}) it closes the connection and prints the final
  summary {"ok": true, "max_rss_kib": ..., ...}.
The parent drives the cells one by one so that each python cell runs right
next to the matching Node cell (fair under drifting background load).

One shared connection (as VDSM does) and N threading.Thread workers; each
worker loops on the call until the window ends or its share of the cell's
call budget is spent. With "event_loop": true, libvirt's default event loop
is registered and run in a thread before connecting (as VDSM does for its
domain events); the default is a plain connection.
"""
import json
import os
import resource
import sys
import threading
import time

import libvirt

PAGE_KIB = os.sysconf('SC_PAGE_SIZE') // 1024


def emit(obj):
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()


def rss_kib():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * PAGE_KIB


def percentile(sorted_vals, q):
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


def run_cell(fn, threads, window_s, max_calls, keep_latency):
    """Runs `threads` workers calling fn(i) until window_s passed; returns stats."""
    per_thread_budget = max(1, max_calls // threads)
    counts = [0] * threads
    lats = [[] for _ in range(threads)]
    errors = [0] * threads
    first_error = []
    start_gate = threading.Event()
    box = {}

    def worker(tid):
        start_gate.wait()
        deadline = box['deadline']
        clock = time.perf_counter
        lat = lats[tid]
        i = tid - 1  # round-robin over the domains, threads staggered
        n = 0
        attempts = 0
        while attempts < per_thread_budget:
            t0 = clock()
            if t0 >= deadline:
                break
            attempts += 1
            i += 1
            try:
                fn(i)
            except Exception as e:  # noqa: BLE001 - libvirtError, or anything: counted, never hangs
                # Counted, and the loop goes on (as in the Node side): getAllDomainStats
                # fails when another test's domain vanishes mid-call.
                errors[tid] += 1
                if not first_error:
                    first_error.append(str(e))
                continue
            if keep_latency:
                lat.append(clock() - t0)
            n += 1
        counts[tid] = n

    ts = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
    for t in ts:
        t.start()
    t0 = time.perf_counter()
    box['deadline'] = t0 + window_s
    start_gate.set()
    for t in ts:
        # A call blocked inside libvirt cannot be interrupted; the watchdog covers that.
        t.join(window_s + 30)
    elapsed = time.perf_counter() - t0
    total = sum(counts)
    out = {'calls': total, 'elapsed_s': round(elapsed, 4), 'cps': round(total / elapsed, 1) if elapsed > 0 else 0}
    if keep_latency:
        all_lat = sorted(x for l in lats for x in l)
        p50 = percentile(all_lat, 0.50)
        p99 = percentile(all_lat, 0.99)
        out['p50_ms'] = round(p50 * 1000, 4) if p50 is not None else None
        out['p99_ms'] = round(p99 * 1000, 4) if p99 is not None else None
    if sum(errors):
        out['errors'] = sum(errors)
        out['first_error'] = first_error[0] if first_error else '?'
    return out


def start_event_loop():
    libvirt.virEventRegisterDefaultImpl()

    def loop():
        while True:
            libvirt.virEventRunDefaultImpl()

    threading.Thread(target=loop, name='libvirt-event-loop', daemon=True).start()


def main():
    cfg = json.loads(sys.argv[1])
    hard_limit = float(cfg.get('hard_limit_s', 60))
    # The parent kills us on its own timeouts too; this also covers a parent that died.
    watchdog = threading.Timer(hard_limit, lambda: os._exit(3))
    watchdog.daemon = True
    watchdog.start()

    # libvirt prints every error on stderr by default; errors are reported in the JSON.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

    rss_start = rss_kib()
    if cfg.get('event_loop'):
        start_event_loop()
    conn = libvirt.open(cfg.get('uri', 'qemu:///system'))
    try:
        doms = [conn.lookupByName(n) for n in cfg['names']]
        nd = len(doms)
        fns = {
            'getInfo': lambda i: doms[i % nd].info(),
            'getXMLDesc': lambda i: doms[i % nd].XMLDesc(0),
            'getAllDomainStats': lambda i: conn.getAllDomainStats(0, 0),
        }
        emit({'ready': True, 'stats_domains': len(conn.getAllDomainStats(0, 0)), 'rss_connected_kib': rss_kib()})
        window_s = cfg['window_ms'] / 1000.0
        warmup_s = cfg['warmup_ms'] / 1000.0
        max_calls = int(cfg['max_calls'])
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            req = json.loads(line)
            if req.get('quit'):
                break
            call, n = req['call'], int(req['threads'])
            fn = fns[call]
            if warmup_s > 0:
                run_cell(fn, n, warmup_s, max_calls, False)
            r = run_cell(fn, n, window_s, max_calls, True)
            r['cell'] = '%s_%d' % (call, n)
            emit(r)
        rss_end = rss_kib()
    finally:
        try:
            conn.close()
        except libvirt.libvirtError:
            pass
    ru = resource.getrusage(resource.RUSAGE_SELF)
    emit({
        'ok': True,
        'python': sys.version.split()[0],
        'libvirt_python': libvirt.getVersion(),
        'event_loop': bool(cfg.get('event_loop')),
        'rss_start_kib': rss_start,
        'rss_end_kib': rss_end,
        'max_rss_kib': ru.ru_maxrss,  # KiB on Linux
        'cpu_user_s': round(ru.ru_utime, 3),
        'cpu_sys_s': round(ru.ru_stime, 3),
    })
    watchdog.cancel()


if __name__ == '__main__':
    try:
        main()
    except Exception as e:  # noqa: BLE001
        emit({'ok': False, 'error': repr(e)})
        sys.exit(1)
