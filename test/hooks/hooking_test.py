"""Unit tests for hooks/lib/hooking.py (run by test/hooks/hooking.test.ts).

Run by hand:
    cd test/hooks && PYTHONPATH=../../hooks/lib /usr/bin/python3 -m unittest -v hooking_test
"""
import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest
from xml.dom import minidom

import hooking

LIB_DIR = os.path.dirname(os.path.abspath(hooking.__file__))

DOMAIN = (
    "<domain type='kvm'><name>t</name>"
    "<uuid>5f1b3e4a-7c2d-4e8f-9a0b-1c2d3e4f5a6b</uuid>"
    "<memory unit='MiB'>64</memory><vcpu>1</vcpu>"
    "<devices><disk type='file' device='disk'><source file='/x.qcow2'/>"
    "<target dev='vda' bus='virtio'/></disk></devices></domain>"
)


class EnvTestCase(unittest.TestCase):
    """Gives each test a temp dir and restores os.environ afterwards."""

    def setUp(self):
        self._env = dict(os.environ)
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name
        for name in ('_hook_domxml', '_hook_json', '_hook_launchflags', 'vmId'):
            os.environ.pop(name, None)

    def tearDown(self):
        os.environ.clear()
        os.environ.update(self._env)
        self._tmp.cleanup()

    def write(self, name, content):
        path = os.path.join(self.tmp, name)
        mode = 'wb' if isinstance(content, bytes) else 'w'
        with open(path, mode) as f:
            f.write(content)
        return path

    def read(self, path):
        with open(path, 'rb') as f:
            return f.read()


class DomxmlTest(EnvTestCase):

    def test_read_returns_a_minidom_document(self):
        os.environ['_hook_domxml'] = self.write('d.xml', DOMAIN)
        doc = hooking.read_domxml()
        self.assertIsInstance(doc, minidom.Document)
        self.assertEqual(doc.documentElement.tagName, 'domain')
        self.assertEqual(doc.getElementsByTagName('name')[0].firstChild.data, 't')

    def test_read_and_write_round_trip_changes(self):
        path = self.write('d.xml', DOMAIN)
        os.environ['_hook_domxml'] = path
        doc = hooking.read_domxml()
        doc.getElementsByTagName('name')[0].firstChild.data = 'renamed'
        hooking.write_domxml(doc)
        again = minidom.parseString(self.read(path))
        self.assertEqual(again.getElementsByTagName('name')[0].firstChild.data, 'renamed')
        self.assertEqual(
            again.getElementsByTagName('uuid')[0].firstChild.data,
            '5f1b3e4a-7c2d-4e8f-9a0b-1c2d3e4f5a6b')

    def test_utf8_survives(self):
        path = self.write('d.xml', DOMAIN.replace('<name>t</name>', '<name>t</name><description>caf\u00e9 \u2603</description>').encode('utf-8'))
        os.environ['_hook_domxml'] = path
        hooking.write_domxml(hooking.read_domxml())
        data = self.read(path)
        self.assertIn('caf\u00e9 \u2603'.encode('utf-8'), data)
        self.assertTrue(data.startswith(b'<?xml version="1.0" encoding="utf-8"?>'))

    def test_write_accepts_text(self):
        path = self.write('d.xml', DOMAIN)
        os.environ['_hook_domxml'] = path
        hooking.write_domxml('<domain><name>s</name></domain>')
        self.assertEqual(self.read(path), b'<domain><name>s</name></domain>')
        hooking.write_domxml(b'<domain/>')
        self.assertEqual(self.read(path), b'<domain/>')

    def test_write_keeps_the_same_file(self):
        path = self.write('d.xml', DOMAIN)
        os.environ['_hook_domxml'] = path
        inode = os.stat(path).st_ino
        hooking.write_domxml(hooking.read_domxml())
        self.assertEqual(os.stat(path).st_ino, inode)

    def test_namespaces_are_kept(self):
        xml = ("<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
               "<qemu:commandline><qemu:arg value='-S'/></qemu:commandline></domain>")
        path = self.write('d.xml', xml)
        os.environ['_hook_domxml'] = path
        hooking.write_domxml(hooking.read_domxml())
        doc = minidom.parseString(self.read(path))
        args = doc.getElementsByTagNameNS('http://libvirt.org/schemas/domain/qemu/1.0', 'arg')
        self.assertEqual([a.getAttribute('value') for a in args], ['-S'])

    def test_missing_variable_raises_key_error(self):
        with self.assertRaises(KeyError):
            hooking.read_domxml()


class JsonTest(EnvTestCase):

    def test_round_trip(self):
        path = self.write('d.json', json.dumps({'request': {'networks': {'n': {'mtu': 1500}}}}))
        os.environ['_hook_json'] = path
        data = hooking.read_json()
        self.assertEqual(data['request']['networks']['n']['mtu'], 1500)
        data['request']['networks']['n']['mtu'] = 9000
        hooking.write_json(data)
        with open(path) as f:
            self.assertEqual(json.load(f)['request']['networks']['n']['mtu'], 9000)

    def test_lists_and_unicode(self):
        path = self.write('d.json', '[{"vmId": "a", "note": "\\u00e9"}]')
        os.environ['_hook_json'] = path
        data = hooking.read_json()
        self.assertEqual(data, [{'vmId': 'a', 'note': '\u00e9'}])
        data.append({'vmId': 'b'})
        hooking.write_json(data)
        with open(path, encoding='utf-8') as f:
            self.assertEqual(len(json.load(f)), 2)


class ToboolTest(unittest.TestCase):

    def test_true_values(self):
        for value in (True, 1, 7, -1, 'true', 'True', 'TRUE', ' true ', '1', '2',
                      'yes', 'YES', 'on', 'On', b'true'):
            self.assertIs(hooking.tobool(value), True, repr(value))

    def test_false_values(self):
        for value in (False, 0, None, '', 'false', 'False', '0', 'no', 'off',
                      'garbage', 'tru', [], {}, object(), 1.5j):
            self.assertIs(hooking.tobool(value), False, repr(value))


class ExitAndLogTest(unittest.TestCase):

    def test_exit_hook_writes_stderr_and_exits_2_by_default(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as cm:
            hooking.exit_hook('something broke')
        self.assertEqual(cm.exception.code, 2)
        self.assertEqual(err.getvalue(), 'something broke\n')

    def test_exit_hook_with_code(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as cm:
            hooking.exit_hook('carry on', return_code=1)
        self.assertEqual(cm.exception.code, 1)

    def test_log(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            hooking.log('hello')
            hooking.log('world')
        self.assertEqual(err.getvalue(), 'hello\nworld\n')


class ExecCmdTest(EnvTestCase):

    def test_lines_as_bytes(self):
        rc, out, err = hooking.execCmd(['printf', 'a\\nb\\n'])
        self.assertEqual((rc, out, err), (0, [b'a', b'b'], []))

    def test_raw(self):
        rc, out, err = hooking.execCmd(['printf', 'a\\nb\\n'], raw=True)
        self.assertEqual((rc, out, err), (0, b'a\nb\n', b''))

    def test_rc_and_stderr(self):
        rc, out, err = hooking.execCmd(['sh', '-c', 'echo oops >&2; echo x; exit 3'])
        self.assertEqual(rc, 3)
        self.assertEqual(out, [b'x'])
        self.assertEqual(err, [b'oops'])

    def test_no_shell(self):
        rc, out, _ = hooking.execCmd(['echo', '$HOME;', '*'])
        self.assertEqual((rc, out), (0, [b'$HOME; *']))

    def test_stdin_data(self):
        self.assertEqual(hooking.execCmd(['cat'], data=b'in\n')[1], [b'in'])
        self.assertEqual(hooking.execCmd(['cat'], data='text')[1], [b'text'])
        # without data stdin is an empty pipe, not the hook's stdin
        self.assertEqual(hooking.execCmd(['cat']), (0, [], []))

    def test_cwd_and_env(self):
        rc, out, _ = hooking.execCmd(['pwd'], cwd=self.tmp)
        self.assertEqual(out, [os.path.realpath(self.tmp).encode()])
        rc, out, _ = hooking.execCmd(['sh', '-c', 'echo $FOO'], env={'FOO': 'bar', 'PATH': '/usr/bin:/bin'})
        self.assertEqual(out, [b'bar'])

    def test_arguments_are_stringified(self):
        self.assertEqual(hooking.execCmd(['echo', 5])[1], [b'5'])

    def test_wrappers(self):
        rc, out, _ = hooking.execCmd(['sh', '-c', 'nice'], nice=5)
        self.assertEqual(rc, 0)
        self.assertEqual(int(out[0]) - int(hooking.execCmd(['nice'])[1][0]), 5)
        rc, out, _ = hooking.execCmd(['sh', '-c', 'ps -o sid= -p $$; echo $$'], setsid=True)
        self.assertEqual(rc, 0)
        self.assertEqual(out[0].strip(), out[1].strip(), 'the command leads its own session')

    def test_reset_cpu_affinity(self):
        if not hasattr(os, 'sched_getaffinity') or len(os.sched_getaffinity(0)) < 2:
            self.skipTest('needs two CPUs')
        allowed = os.sched_getaffinity(0)
        one = {min(allowed)}
        os.sched_setaffinity(0, one)
        try:
            script = 'import os; print(len(os.sched_getaffinity(0)))'
            _, out, _ = hooking.execCmd([sys.executable, '-c', script])
            self.assertGreaterEqual(int(out[0]), 2)
            _, out, _ = hooking.execCmd([sys.executable, '-c', script], resetCpuAffinity=False)
            self.assertEqual(int(out[0]), 1)
        finally:
            os.sched_setaffinity(0, allowed)

    def test_missing_program_raises_oserror(self):
        with self.assertRaises(OSError):
            hooking.execCmd(['/nonexistent/program'])

    def test_legacy_keywords(self):
        self.assertEqual(hooking.execCmd(['true'], sync=True, deathSignal=9)[0], 0)
        with self.assertRaises(ValueError):
            hooking.execCmd(['true'], sync=False)

    def test_logger_gets_printable(self):
        records = []

        class Handler(logging.Handler):
            def emit(self, record):
                records.append(record.getMessage())

        logger = logging.getLogger('hooking-test')
        logger.setLevel(logging.DEBUG)
        logger.addHandler(Handler())
        hooking.execCmd(['echo', 'secret'], printable=['echo', '****'], execCmdLogger=logger)
        self.assertTrue(any('****' in r for r in records), records)
        self.assertFalse(any('secret' in r for r in records), records)


class LaunchFlagsTest(EnvTestCase):
    VM = '5f1b3e4a-7c2d-4e8f-9a0b-1c2d3e4f5a6b'

    def setUp(self):
        super().setUp()
        self._run_dir = hooking.RUN_DIR
        hooking.RUN_DIR = os.path.join(self.tmp, 'run')

    def tearDown(self):
        hooking.RUN_DIR = self._run_dir
        super().tearDown()

    def test_uses_the_path_the_agent_gives(self):
        path = os.path.join(self.tmp, 'given', 'launchflags')
        os.environ['_hook_launchflags'] = path
        os.environ['vmId'] = self.VM
        self.assertEqual(hooking.launch_flags_path(self.VM), path)
        self.assertEqual(hooking.load_vm_launch_flags_from_file(self.VM), 0)
        hooking.dump_vm_launch_flags_to_file(self.VM, 1)
        with open(path) as f:
            self.assertEqual(f.read(), '1')
        self.assertEqual(hooking.load_vm_launch_flags_from_file(self.VM), 1)

    def test_reads_what_the_agent_wrote(self):
        path = self.write('launchflags', '1\n')
        os.environ['_hook_launchflags'] = path
        flags = hooking.load_vm_launch_flags_from_file(self.VM)
        self.assertEqual(flags, 1)
        hooking.dump_vm_launch_flags_to_file(self.VM, flags | 4)
        self.assertEqual(hooking.load_vm_launch_flags_from_file(self.VM), 5)

    def test_default_path_under_run_dir(self):
        expected = os.path.join(self.tmp, 'run', self.VM, 'launchflags')
        self.assertEqual(hooking.launch_flags_path(self.VM), expected)
        hooking.dump_vm_launch_flags_to_file(self.VM, 2)
        self.assertTrue(os.path.isfile(expected))
        self.assertEqual(hooking.load_vm_launch_flags_from_file(self.VM), 2)
        hooking.remove_vm_launch_flags_file(self.VM)
        self.assertFalse(os.path.exists(expected))
        hooking.remove_vm_launch_flags_file(self.VM)  # a missing file is fine
        self.assertEqual(hooking.load_vm_launch_flags_from_file(self.VM), 0)

    def test_other_vm_does_not_use_the_given_path(self):
        os.environ['_hook_launchflags'] = os.path.join(self.tmp, 'given')
        os.environ['vmId'] = self.VM
        other = '00000000-0000-4000-8000-000000000000'
        self.assertEqual(hooking.launch_flags_path(other),
                         os.path.join(self.tmp, 'run', other, 'launchflags'))

    def test_unsafe_ids_are_refused(self):
        for bad in ('../etc', 'a/b', '', '.hidden'):
            with self.assertRaises(ValueError, msg=bad):
                hooking.launch_flags_path(bad)


class VdsmStyleScriptTest(EnvTestCase):
    """A hook written for VDSM runs unchanged with our module on PYTHONPATH."""

    SCRIPT = textwrap.dedent('''\
        #!/usr/bin/python3
        import os
        import sys

        import hooking

        if 'myprop' in os.environ:
            domxml = hooking.read_domxml()
            domain = domxml.getElementsByTagName('domain')[0]
            desc = domxml.createElement('description')
            desc.appendChild(domxml.createTextNode(os.environ['myprop']))
            domain.appendChild(desc)
            hooking.write_domxml(domxml)
            flags = hooking.load_vm_launch_flags_from_file(os.environ['vmId'])
            hooking.dump_vm_launch_flags_to_file(os.environ['vmId'], flags | 1)
            if not hooking.tobool(os.environ.get('ok', 'true')):
                hooking.exit_hook('told to fail')
            sys.stdout.write('stdout is ignored\\n')
        ''')

    def run_script(self, **env):
        script = self.write('50_myhook', self.SCRIPT)
        os.chmod(script, 0o755)
        full = dict(os.environ)
        full.update(env)
        full['PYTHONPATH'] = LIB_DIR
        return subprocess.run([script], env=full, capture_output=True, text=True)

    def test_runs_and_rewrites(self):
        path = self.write('d.xml', DOMAIN)
        flags = self.write('launchflags', '0')
        res = self.run_script(_hook_domxml=path, _hook_launchflags=flags,
                              vmId='5f1b3e4a-7c2d-4e8f-9a0b-1c2d3e4f5a6b', myprop='hello')
        self.assertEqual(res.returncode, 0, res.stderr)
        doc = minidom.parseString(self.read(path))
        self.assertEqual(doc.getElementsByTagName('description')[0].firstChild.data, 'hello')
        self.assertEqual(self.read(flags), b'1')

    def test_exit_hook_code_reaches_the_caller(self):
        path = self.write('d.xml', DOMAIN)
        res = self.run_script(_hook_domxml=path, _hook_launchflags=self.write('f', ''),
                              vmId='x', myprop='hello', ok='false')
        self.assertEqual(res.returncode, 2)
        self.assertEqual(res.stderr, 'told to fail\n')

    def test_without_the_property_nothing_changes(self):
        path = self.write('d.xml', DOMAIN)
        res = self.run_script(_hook_domxml=path, vmId='x')
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(self.read(path), DOMAIN.encode())


if __name__ == '__main__':
    unittest.main()
