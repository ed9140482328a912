#!/usr/bin/python3
"""Hostvisor lab: run a command as a child subreaper.

Usage: /usr/bin/python3 subreaper.py [--log FILE] -- CMD [ARG...]

Marks this process PR_SET_CHILD_SUBREAPER, then forks and execs CMD. Every
descendant that gets orphaned (libvirtd after `-d` daemonizes, the QEMU
processes libvirtd double-forks) is re-parented here instead of to PID 1 and
reaped at once. PID 1 on the lab machines reaps orphans only every ~1.5-2 s,
and libvirt waits for a destroyed QEMU's zombie to disappear, so without this
every destroy/shutdown takes seconds.

The process exits once it has no children left. It must be started detached
(setsid, stdio redirected) by the caller: see libvirtd.sh.
"""
import ctypes
import os
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def log(msg: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    sys.stderr.write(f"{stamp} subreaper[{os.getpid()}]: {msg}\n")
    sys.stderr.flush()


def close_inherited_fds() -> None:
    """Close every inherited fd above stderr (lock files, pipes of whoever
    started us), so that neither we nor the daemons keep them open."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass


def main(argv: list[str]) -> int:
    logfile = None
    args = argv[1:]
    while args and args[0] != "--":
        if args[0] == "--log" and len(args) >= 2:
            logfile = args[1]
            args = args[2:]
        else:
            break
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        sys.stderr.write(__doc__ or "")
        return 2

    close_inherited_fds()
    if logfile:
        fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        log(f"prctl(PR_SET_CHILD_SUBREAPER) failed: {os.strerror(err)}")
        return 1

    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(args[0], args)
        except OSError as e:
            sys.stderr.write(f"subreaper: exec {args[0]}: {e}\n")
            os._exit(127)

    log(f"started pid {pid}: {' '.join(args)}")
    reaped = 0
    while True:
        try:
            cpid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        reaped += 1
        code = os.waitstatus_to_exitcode(status)
        # Keep looping after the direct child exits: orphaned descendants
        # (the daemonized libvirtd, QEMU processes) are still ours to reap.
        what = "direct child" if cpid == pid else "orphan"
        log(f"reaped {what} {cpid} (exit {code})")
    log(f"no children left after reaping {reaped} process(es); exiting")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
