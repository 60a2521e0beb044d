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

import os

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

    def run_check(self, results, refused=None):
        out = []
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.cli._stores_or_failure',
            lambda conf: ({'fast': object()}, refused or {})))
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.check.run_checks',
            lambda store, probe, write_test: results))
        args = cli._parser().parse_args(['check', '--probe'])
        return cli.check_command(args, None, out=out.append), out

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
