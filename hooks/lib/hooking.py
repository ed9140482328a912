"""hooking - helpers for Hostvisor hook scripts (VDSM-compatible).

Hostvisor runs hook scripts the way VDSM does, so a VDSM hook that does
``import hooking`` runs unchanged against this module.

The contract a script works under:

* Every executable regular file in ``<hooks dir>/<hook point>/`` runs, in
  sorted order, against the same temporary file; each script may rewrite it
  and the agent reads it back after the last one.
* XML hook points (VM and device hooks) name that file in the environment
  variable ``_hook_domxml``; JSON hook points (network setup, the get_* hooks,
  after_disk_prepare, ...) name it in ``_hook_json``.
* The VM's custom properties are environment variables, one each, next to
  ``vmId`` and the call's own parameters.
* stdout is ignored; stderr is logged by the agent.
* Exit codes: 0 success; 1 failed, the next script still runs; 2 failed, no
  further script runs; anything above 2 is reserved (logged as a warning and
  counted as a failure, the chain continues).
* before_vm_start and before_device_create may change the libvirt launch flags
  (decimal virDomainCreateFlags) through a file whose path the agent puts in
  ``_hook_launchflags``.

Only the Python 3 standard library is used.
"""

import json
import os
import re
import subprocess
import sys
from xml.dom import minidom

__all__ = [
    'read_domxml',
    'write_domxml',
    'read_json',
    'write_json',
    'log',
    'exit_hook',
    'tobool',
    'execCmd',
    'launch_flags_path',
    'load_vm_launch_flags_from_file',
    'dump_vm_launch_flags_to_file',
    'remove_vm_launch_flags_file',
]

#: Where the agent keeps per-VM runtime files when ``_hook_launchflags``
#: is not set (``<RUN_DIR>/<vmId>/launchflags``).
RUN_DIR = '/run/hostvisor'
LAUNCH_FLAGS_FILE = 'launchflags'

# Exit codes of the hook protocol, for scripts that want names.
EXIT_OK = 0
EXIT_FAIL_CONTINUE = 1
EXIT_FAIL_STOP = 2


# --- the data file ------------------------------------------------------


def read_domxml():
    """Parse the XML file named by ``$_hook_domxml``.

    Returns an ``xml.dom.minidom.Document``. For VM hook points this is the
    whole ``<domain>``; for device and hotplug hook points it is the device
    element. Raises KeyError when the variable is not set (the script was not
    started for an XML hook point).
    """
    with open(os.environ['_hook_domxml'], 'rb') as f:
        return minidom.parseString(f.read())


def write_domxml(domxml):
    """Write ``domxml`` back to the file named by ``$_hook_domxml``.

    ``domxml`` is normally the Document returned by read_domxml() (any
    minidom node with ``toxml()`` works); it is serialised as UTF-8. A ``str``
    or ``bytes`` holding XML text is written as it is. The file is rewritten
    in place, so the agent reads the result from the same path.
    """
    if isinstance(domxml, bytes):
        data = domxml
    elif isinstance(domxml, str):
        data = domxml.encode('utf-8')
    else:
        data = domxml.toxml(encoding='utf-8')
    with open(os.environ['_hook_domxml'], 'wb') as f:
        f.write(data)


def read_json():
    """Load the JSON document in the file named by ``$_hook_json``.

    Returns whatever the JSON holds (usually a dict, a list for VM stats).
    """
    with open(os.environ['_hook_json'], encoding='utf-8') as f:
        return json.load(f)


def write_json(data):
    """Serialise ``data`` as JSON into the file named by ``$_hook_json``."""
    with open(os.environ['_hook_json'], 'w', encoding='utf-8') as f:
        json.dump(data, f)


# --- reporting ----------------------------------------------------------


def log(message):
    """Write ``message`` and a newline to stderr, which the agent logs."""
    sys.stderr.write('%s\n' % (message,))
    sys.stderr.flush()


def exit_hook(message, return_code=2):
    """Write ``message`` and a newline to stderr and exit with ``return_code``.

    The default, 2, means "failed, run no further script"; pass 1 to let the
    remaining scripts run. For raising hook points (before_vm_start and most
    before_* points) any non-zero code makes the operation fail with
    hookError (code 78).
    """
    log(message)
    sys.exit(return_code)


# --- conversions --------------------------------------------------------

_TRUE_WORDS = ('true', 'yes', 'on')
_FALSE_WORDS = ('false', 'no', 'off', '')


def tobool(value):
    """Interpret a custom property (or any value) as a boolean.

    * ``None`` is False; a bool is itself; an int is ``value != 0``.
    * Strings are compared case-insensitively after trimming blanks:
      'true', 'yes', 'on' are True; 'false', 'no', 'off' and '' are False;
      other strings are read as an integer ('1' is True, '0' is False).
    * Anything that cannot be interpreted is False, never an exception.
    """
    try:
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, bytes):
            value = value.decode('utf-8', 'replace')
        text = str(value).strip().lower()
        if text in _TRUE_WORDS:
            return True
        if text in _FALSE_WORDS:
            return False
        return int(text) != 0
    except Exception:
        return False


# --- running commands -----------------------------------------------------


def _online_cpus():
    """The host's online CPU numbers, or None when they cannot be read."""
    try:
        with open('/sys/devices/system/cpu/online') as f:
            spec = f.read().strip()
    except OSError:
        count = os.cpu_count()
        return set(range(count)) if count else None
    cpus = set()
    for part in spec.split(','):
        if not part:
            continue
        if '-' in part:
            lo, hi = part.split('-', 1)
            cpus.update(range(int(lo), int(hi) + 1))
        else:
            cpus.add(int(part))
    return cpus or None


def execCmd(command, sudo=False, cwd=None, data=None, raw=False,
            printable=None, env=None, nice=None, ioclass=None,
            ioclassdata=None, setsid=False, execCmdLogger=None,
            resetCpuAffinity=True, **legacy):
    """Run an external command and wait for it; returns ``(rc, out, err)``.

    Mirrors VDSM's helper of the same name:

    * ``command`` is an argv sequence; no shell is involved.
    * ``out`` and ``err`` are lists of ``bytes`` lines without line endings,
      or the whole ``bytes`` output when ``raw`` is true (as in VDSM on
      Python 3; decode them if you need text).
    * ``data`` (bytes or str) is written to the command's stdin; otherwise
      stdin is an empty pipe.
    * ``cwd`` and ``env`` are passed to subprocess (``env=None`` inherits the
      hook's environment).
    * ``sudo`` runs the command through ``sudo -n``; ``nice`` through
      ``nice -n <nice>``; ``ioclass``/``ioclassdata`` through
      ``ionice -c <class> [-n <data>]``; ``setsid`` through ``setsid``.
    * ``resetCpuAffinity`` (default True) lets the command run on every
      online CPU even if the hook itself was started with a narrower affinity.
    * ``printable`` replaces the argv in the debug line given to
      ``execCmdLogger`` (a logging.Logger-like object; nothing is logged when
      it is None), so secrets can be hidden.
    * Legacy keyword arguments of older VDSM versions (``sync``,
      ``deathSignal``, ``childUmask``, ...) are accepted and ignored, except
      ``sync=False``, which is not supported and raises ValueError.

    Raises OSError when the program cannot be started, like subprocess.
    """
    if legacy.get('sync', True) is False:
        raise ValueError('execCmd: sync=False is not supported')

    argv = [str(a) for a in command]
    if setsid:
        argv = ['setsid'] + argv
    if ioclass is not None:
        prefix = ['ionice', '-c', str(ioclass)]
        if ioclassdata is not None:
            prefix += ['-n', str(ioclassdata)]
        argv = prefix + argv
    if nice is not None:
        argv = ['nice', '-n', str(nice)] + argv
    if sudo:
        # not in programs.tsv: only a third-party hook that asks for sudo runs it (hooks run as root).
        argv = ['sudo', '-n'] + argv

    if execCmdLogger is not None:
        shown = printable if printable else argv
        execCmdLogger.debug('%s (cwd %s)', ' '.join(str(a) for a in shown),
                            cwd)

    preexec = None
    if resetCpuAffinity and hasattr(os, 'sched_setaffinity'):
        cpus = _online_cpus()
        if cpus:
            def preexec():
                try:
                    os.sched_setaffinity(0, cpus)
                except OSError:
                    pass

    if isinstance(data, str):
        data = data.encode('utf-8')

    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        close_fds=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=preexec,
    )
    try:
        out, err = proc.communicate(data)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    out = out or b''
    err = err or b''
    if execCmdLogger is not None:
        execCmdLogger.debug('rc=%s err=%r', proc.returncode, err)
    if not raw:
        out = out.splitlines()
        err = err.splitlines()
    return proc.returncode, out, err


# --- launch flags ---------------------------------------------------------

_SAFE_ID = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.:-]*$')


def launch_flags_path(vm_id):
    """The launch-flags file of ``vm_id``.

    When the hook runs for that VM and the agent set ``_hook_launchflags``,
    that path; otherwise ``/run/hostvisor/<vm_id>/launchflags`` (the agent
    writes the file there too). Raises ValueError for an id that could escape
    the run directory.
    """
    vm_id = str(vm_id)
    given = os.environ.get('_hook_launchflags')
    env_vm = os.environ.get('vmId')
    if given and (not env_vm or env_vm == vm_id):
        return given
    if not _SAFE_ID.match(vm_id):
        raise ValueError('invalid vm id: %r' % (vm_id,))
    return os.path.join(RUN_DIR, vm_id, LAUNCH_FLAGS_FILE)


def load_vm_launch_flags_from_file(vm_id):
    """Return the launch flags of ``vm_id`` as an int.

    The file holds a decimal virDomainCreateFlags value (VIR_DOMAIN_START_PAUSED
    is 1). A missing file reads as 0 (VIR_DOMAIN_NONE). Flags are combined
    bitwise, e.g. ``flags | 1`` to start the VM paused.
    """
    path = launch_flags_path(vm_id)
    if not os.path.isfile(path):
        return 0
    with open(path) as f:
        text = f.readline().strip()
    return int(text) if text else 0


def dump_vm_launch_flags_to_file(vm_id, flags):
    """Store ``flags`` (an int) as the launch flags of ``vm_id``.

    Creates the file's directory if needed and writes the decimal value; the
    agent reads it back after the last before_vm_start (or
    before_device_create) script.
    """
    path = launch_flags_path(vm_id)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(str(int(flags)))


def remove_vm_launch_flags_file(vm_id):
    """Delete the launch-flags file of ``vm_id``; a missing file is fine."""
    try:
        os.remove(launch_flags_path(vm_id))
    except FileNotFoundError:
        pass
