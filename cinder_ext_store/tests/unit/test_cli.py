# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

import io
import logging
import os
import subprocess
import sys
import types

import ddt
import fixtures
from oslo_config import cfg

from cinder_ext_store import check
from cinder_ext_store import cli
from cinder_ext_store import reconcile
from cinder_ext_store.tests.unit import base
from cinder_ext_store.tests.unit import test_reconcile

CONF = """[DEFAULT]
enabled_backends = fast:cinder_ext, files:file
[glance_store]
default_backend = fast
[fast]
cinder_volume_type = fast
[oslo_concurrency]
lock_path = %s
"""


@ddt.ddt
class TestConfig(base.TestCase):

    def test_reads_glance_api_conf_like_glance(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(tmp, 'glance-api.conf')
        with open(path, 'w') as f:
            f.write(CONF % tmp)
        args = cli._parser().parse_args(['--config-file', path,
                                         'reconcile'])
        conf = cli.load_conf(args, cfg.ConfigOpts())
        found = cli.stores(conf)
        self.assertEqual(['fast'], list(found))  # not the file store
        self.assertEqual('fast', found['fast'].store_conf.cinder_volume_type)

    def test_defaults(self):
        args = cli._parser().parse_args(['reconcile'])
        self.assertFalse(args.apply)
        self.assertEqual(cli.DEFAULT_GRACE, args.older_than)
        self.assertRaises(SystemExit, cli._parser().parse_args, [])

    def test_negative_grace_is_refused(self):
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', io.StringIO()))
        for value in ('-1', 'soon'):
            self.assertRaises(SystemExit, cli._parser().parse_args,
                              ['reconcile', '--older-than', value])
        self.assertEqual(0, cli._parser().parse_args(
            ['reconcile', '--older-than', '0']).older_than)

    def write(self, text, name='glance-api.conf', subdir=''):
        tmp = self.useFixture(fixtures.TempDir()).path if not subdir else \
            subdir
        os.makedirs(tmp, exist_ok=True)
        path = os.path.join(tmp, name)
        with open(path, 'w') as f:
            f.write(text)
        return tmp, path

    def found(self, *argv):
        args = cli._parser().parse_args(list(argv))
        return cli.stores(cli.load_conf(args, cfg.ConfigOpts()))

    @ddt.data(('--config-file', 'file'), ('--config-dir', 'dir'))
    @ddt.unpack
    def test_config_after_the_subcommand(self, option, kind):
        tmp, path = self.write(CONF % '/nonexistent-lock')
        where = path if kind == 'file' else tmp
        for argv in ((option, where, 'reconcile'),
                     ('reconcile', option, where),
                     ('check', option, where)):
            self.assertEqual(['fast'], list(self.found(*argv)), argv)

    def test_config_dir_is_read_as_glance_api_reads_it(self):
        tmp, _path = self.write(CONF % '/nonexistent-lock')
        # Another service's file is not glance-api's...
        self.write('[DEFAULT]\nenabled_backends = other:cinder_ext\n',
                   'glance-cache.conf', tmp)
        # ... its .d directory is.
        self.write('[fast]\ncinder_volume_type = gold\n', 'override.conf',
                   os.path.join(tmp, 'glance-api.conf.d'))
        found = self.found('--config-dir', tmp, 'check')
        self.assertEqual(['fast'], list(found))
        self.assertEqual('gold', found['fast'].store_conf.cinder_volume_type)

    def test_legacy_single_store_mode(self):
        tmp, path = self.write('[glance_store]\nstores = file, cinder_ext\n'
                               'default_store = cinder\n'
                               'cinder_volume_type = fast\n'
                               '[oslo_concurrency]\nlock_path = %s\n'
                               % self.useFixture(fixtures.TempDir()).path)
        found = self.found('--config-file', path, 'reconcile')
        self.assertEqual(['glance_store'], list(found))
        self.assertEqual('fast',
                         found['glance_store'].store_conf.cinder_volume_type)


@ddt.ddt
class TestUnusableConfiguration(base.TestCase):
    """Every configuration the tools cannot use: one line, exit 1."""

    def run_main(self, *argv):
        out = []
        status = cli.main(list(argv), out=out.append, conf=cfg.ConfigOpts())
        self.assertEqual(1, status)
        self.assertEqual(1, len(out), out)
        self.assertNotIn('Traceback', out[0])
        return out[0]

    def file(self, text):
        tmp = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(tmp, 'glance-api.conf')
        with open(path, 'w') as f:
            f.write(text)
        return path

    @ddt.data('check', 'reconcile')
    def test_no_backends_at_all(self, command):
        line = self.run_main('--config-file', self.file('[DEFAULT]\n'),
                             command)
        self.assertIn('neither enabled_backends (multi-store) nor '
                      '[glance_store] stores (single-store) names '
                      'cinder_ext', line)

    @ddt.data('check', 'reconcile')
    def test_no_cinder_ext_backend(self, command):
        line = self.run_main('--config-file', self.file(
            '[DEFAULT]\nenabled_backends = a:file, b:rbd\n'), command)
        self.assertIn('no cinder_ext backend in enabled_backends (a:file, '
                      'b:rbd)', line)

    def test_missing_file(self):
        line = self.run_main('--config-file', '/nonexistent/glance-api.conf',
                             'check')
        self.assertIn('/nonexistent/glance-api.conf', line)

    def test_unparseable_file(self):
        line = self.run_main('--config-file', self.file('no section\n'),
                             'reconcile')
        self.assertIn('configuration not usable', line)

    def test_unreadable_file(self):
        # (A mode-000 file is readable by root, who runs CI: a directory
        # given as a file is unreadable for everyone.)
        tmp = self.useFixture(fixtures.TempDir()).path
        line = self.run_main('--config-file', tmp, 'check')
        self.assertIn(tmp, line)


class TestReconcileCommand(test_reconcile.ReconcileTestCase):

    def command(self, *argv, glance=None):
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.cli.stores', lambda conf: {'images':
                                                         self.store}))
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.reconcile.GlanceImages',
            lambda: glance or test_reconcile.FakeGlance(
                {'gone': ('deleted',)})))
        args = cli._parser().parse_args(['reconcile'] + list(argv))
        return cli.reconcile_command(args, None, out=self.out.append)

    def test_dry_run_then_apply(self):
        self.image_volume('gone')
        self.assertEqual(0, self.command('--older-than', '0'))
        self.assertIn('1 action(s); nothing changed (dry run)', self.out[-1])
        self.assertEqual(1, len(self.cloud.volumes))
        self.assertEqual(0, self.command('--older-than', '0', '--apply'))
        self.assertEqual('1 action(s) done, 0 failed', self.out[-1])
        self.cloud.finish_transitions()
        self.assertEqual({}, self.cloud.volumes)

    def test_all_stores_are_planned_before_acting(self):
        # The upload's marker is on the host (planned by the first store),
        # its volume is of the second store's type.
        vid = self.image_volume('crashed')
        att = test_reconcile.attachments.Attachment(self.api, self.host,
                                                    vid, 'rw')
        att.open()
        self.store.uploads.uploading(vid, att)
        self.kill(os.path.join(self.store.shares.dir, '%s.upload' % vid))
        other = self.make_store(self.make_conf(cinder_volume_type='fast'))
        other.host = self.host
        self.cloud.volumes[vid]['volume_type'] = 'fast'
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.cli.stores',
            lambda conf: {'a': self.store, 'b': other}))
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.reconcile.GlanceImages',
            lambda: test_reconcile.FakeGlance()))
        args = cli._parser().parse_args(['reconcile', '--apply'])
        self.assertEqual(0, cli.reconcile_command(args, None,
                                                  out=self.out.append))
        self.assertEqual('2 action(s) done, 0 failed', self.out[-1])
        self.assertNothingLeft()

    def test_nothing_to_do(self):
        self.assertEqual(0, self.command())
        self.assertEqual(['nothing to clean'], self.out)

    def test_failure_is_exit_status_1(self):
        self.image_volume('gone')
        # Refused every time; force-delete is an admin's.
        self.cloud.fail('delete', reconcile.cinder_api.cinder_exc.BadRequest(
            400, 'refused'), 2)
        self.assertEqual(1, self.command('--older-than', '0', '--apply'))
        self.assertIn('1 failed', self.out[-1])

    def test_glance_unreachable_is_said_and_fails_the_run(self):
        vid = self.image_volume('gone', status='attaching')
        glance = test_reconcile.FakeGlance(reachable=False)
        glance.reason = 'no database'
        self.assertEqual(1, self.command('--apply', glance=glance))
        self.assertIn("Glance's database cannot be reached (no database)",
                      self.out[0])
        self.assertIn('UNDECIDED, kept volume %s' % vid, self.out[1])
        self.assertIn('incomplete: image volumes were not judged',
                      self.out[-1])
        self.assertIn(vid, self.cloud.volumes)


class TestCheckCommand(base.TestCase):

    def run_check(self, results, refused=None, *argv):
        out = []
        self.lock = self.useFixture(fixtures.TempDir()).path
        store = types.SimpleNamespace(lock_path=lambda: self.lock)
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.cli._stores_or_failure',
            lambda conf: ({'fast': store}, refused or {})))
        self.judged = []

        def run_checks(store, probe, write_test, glance_uid):
            self.judged.append(glance_uid)
            return results
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.check.run_checks', run_checks))
        args = cli._parser().parse_args(['check', '--probe'] + list(argv))
        return cli.check_command(args, None, out=out.append), out

    def test_judges_glance_apis_user(self):
        # By default the lock path's owner (glance-api's), not the caller.
        self.run_check([])
        self.assertEqual([os.stat(self.lock).st_uid], self.judged)
        self.run_check([], None, '--as-user', '4242')
        self.assertEqual([4242], self.judged)
        self.run_check([], None, '--as-user', 'root')
        self.assertEqual([0], self.judged)
        self.assertRaises(cli.ConfigError, self.run_check, [], None,
                          '--as-user', 'no-such-user-here')

    def test_table_and_fixes(self):
        status, out = self.run_check([
            check.Result('credentials', check.OK, 'glance authenticates'),
            check.Result('volume type', check.FAIL, 'gold does not exist',
                         'create it'),
            check.Result('in-use extend', check.WARN, 'refused', 'turn off')])
        self.assertEqual(1, status)
        self.assertEqual('BACKEND  CHECK          RESULT  DETAIL', out[0])
        self.assertEqual('fast     volume type    FAIL    gold does not '
                         'exist', out[2])
        self.assertIn('FIX fast/volume type: create it', out)
        self.assertIn('HINT fast/in-use extend: turn off', out)
        self.assertEqual('1 check(s) failed', out[-1])

    def test_all_good_is_exit_0(self):
        status, out = self.run_check([check.Result('lock path', check.OK,
                                                   'writable')])
        self.assertEqual(0, status)
        self.assertEqual('all checks passed', out[-1])

    def test_store_glance_would_refuse(self):
        status, out = self.run_check([], refused={'fast': 'no lock path'})
        self.assertEqual(1, status)
        self.assertIn('configuration  FAIL    no lock path', out[1])


class TestQuietOutput(base.TestCase):
    """What is not the operator's concern stays out of the tools' output."""

    def stderr_of(self, code):
        return subprocess.run([sys.executable, '-c', code],
                              capture_output=True, text=True,
                              timeout=60).stderr

    def test_eventlets_deprecation_notice_is_not_printed(self):
        # What the store's imports print without the tool's filter.
        self.assertIn('Eventlet is deprecated',
                      self.stderr_of('import oslo_privsep.daemon'))
        self.assertNotIn('Eventlet is deprecated',
                         self.stderr_of('import cinder_ext_store.cli'))

    def test_os_brick_speaks_of_errors_only(self):
        for name in cli.QUIET_LOGGERS:
            self.addCleanup(logging.getLogger(name).setLevel,
                            logging.getLogger(name).level)
        cli.main(['reconcile', '--config-file', '/nonexistent'],
                 out=lambda line: None, conf=cfg.ConfigOpts())
        self.assertEqual(logging.ERROR,
                         logging.getLogger('os_brick').level)
