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

"""``cinder-ext-store check`` against the local stack, as an operator runs
it: from glance-api's environment, with glance-api's configuration, good
and broken."""

import configparser
import logging
import os
import shutil
import time

from cinder_ext_store.tests.functional import base
from harness import glance
from harness import images
from harness import leaks

LOG = logging.getLogger('check')


class TestCheck(base.FunctionalTestCase):

    def setUp(self):
        super(TestCheck, self).setUp()
        self.etc = self.cloud.facts.glance.config_dir
        if not self.etc:
            self.fail('the cloud has no glance_config_dir (the local stack '
                      'with Keystone has it)')

    def check(self, etc, *args):
        started = time.monotonic()
        done = self.glance_command('check', *args, etc=etc)
        took = time.monotonic() - started
        text = '$ cinder-ext-store --config-dir %s check %s  (%.1fs, exit ' \
               '%d)\n%s' % ('<glance etc>' if etc == self.etc else
                            '<broken copy>', ' '.join(args), took,
                            done.returncode, done.stdout)
        LOG.warning('%s', text)
        leaks.record(self.cloud, 'check.txt', text)
        return done.returncode, done.stdout, took

    def rows(self, out):
        """{(backend, check): (result, detail)}, cut by the header."""
        lines = out.splitlines()
        head = lines[0]
        cols = [head.index(h) for h in ('CHECK', 'RESULT', 'DETAIL')]
        found = {}
        for line in lines[1:]:
            if line.startswith(('FIX ', 'HINT ')) or len(line) < cols[2]:
                continue
            found[(line[:cols[0]].strip(), line[cols[0]:cols[1]].strip())] = (
                line[cols[1]:cols[2]].strip(), line[cols[2]:])
        return found

    def test_good_configuration(self):
        status, out, took = self.check(self.etc, '--probe', '--write-test')
        self.assertEqual(0, status, out)
        self.assertIn('all checks passed', out)
        rows = self.rows(out)
        backend = self.cloud.storage_facts.glance_backend or 'images'
        for name in ('credentials', 'endpoint', 'volume type',
                     'registered locations', 'in-tree backends', 'quota',
                     'options', 'lock path', 'privsep',
                     'device access', 'in-use extend', 'write test'):
            self.assertEqual('ok', rows[(backend, name)][0], out)
        # RBD backends: the Ceph rows from the write test's connection, and
        # no block device to lend.
        rbd = self.cloud.facts.storages.get('rbd')
        if rbd is not None and rbd.glance_backend:
            for name in ('ceph bindings', 'ceph keyring'):
                self.assertEqual('ok', rows[(rbd.glance_backend, name)][0],
                                 out)
            self.assertIn('not used: RBD', rows[(rbd.glance_backend,
                                                 'device access')][1])
        self.assertNotIn((backend, 'ceph keyring'), rows)
        # The stack's rbd-offline shares type rbd with rbd, listed before
        # it: Cinder's upload-to-image locations go to rbd, and check says
        # so.
        offline = rows.get(('rbd-offline', 'registered locations'))
        if offline is not None:
            self.assertEqual('warn', offline[0], out)
            self.assertIn('go to backend rbd,', offline[1])
        self.assertLess(took, 60)
        self.assertNoLeftovers()

    def test_rbd_rows_without_write_test(self):
        # What the store's last attach on this host recorded is enough for
        # the Ceph rows: an upload through Glance to the RBD backend first.
        rbd = self.cloud.facts.storages.get('rbd')
        if rbd is None or not rbd.glance_backend:
            self.skipTest('the stack runs without Ceph (--no-ceph)')
        user = glance.GlanceUser(self.cloud)
        image = user.create('check-rbd-record')
        self.addCleanup(user.delete_quietly, image.id)
        src = images.ImageSource(3 * base.MiB, seed=41)
        user.client.images.upload(image.id, images.Unsized(src),
                                  image_size=3 * base.MiB,
                                  backend=rbd.glance_backend)
        status, out, _took = self.check(self.etc)
        self.assertEqual(0, status, out)
        rows = self.rows(out)
        self.assertEqual(('ok', "rbd (recorded by the store's last attach "
                          'on this host)'),
                         rows[(rbd.glance_backend, 'protocol')], out)
        for name in ('ceph bindings', 'ceph keyring'):
            self.assertEqual('ok', rows[(rbd.glance_backend, name)][0], out)
        self.assertIn('not used: RBD', rows[(rbd.glance_backend,
                                             'device access')][1])
        self.assertEqual('skip', rows[(rbd.glance_backend, 'write test')][0])
        user.client.images.delete(image.id)
        self.assertNoLeftovers()

    def broken_copy(self):
        tmp = self.useFixture(base.fixtures.TempDir()).path
        copy = os.path.join(tmp, 'etc')
        shutil.copytree(self.etc, copy)
        # glance-api's user runs check: let it read this copy.
        os.chmod(tmp, 0o755)
        for name in os.listdir(copy):
            os.chmod(os.path.join(copy, name), 0o755 if os.path.isdir(
                os.path.join(copy, name)) else 0o644)
        path = os.path.join(copy, 'glance-api.conf')
        conf = configparser.ConfigParser(interpolation=None, strict=False)
        conf.read(path)
        return copy, path, conf

    def test_broken_configuration(self):
        copy, path, conf = self.broken_copy()
        backends = dict(b.split(':') for b in
                        conf['DEFAULT']['enabled_backends'].split(','))
        ours = sorted(n for n, kind in backends.items()
                      if kind.strip() == 'cinder_ext')
        wrong_password, missing_type = ours[0], ours[1]
        conf[wrong_password]['cinder_store_password'] = 'not-the-password'
        conf[missing_type]['cinder_volume_type'] = 'no-such-type'
        # An in-tree backend on a third backend's volume type, as a
        # migration half done leaves it.
        third = ours[2]
        conf['DEFAULT']['enabled_backends'] += ',legacy:cinder'
        conf['legacy'] = {k: v for k, v in conf[third].items()
                          if k not in conf.defaults() and
                          not k.startswith('cinder_ext')}
        blocker = os.path.join(copy, 'not-a-directory')
        open(blocker, 'w').close()
        conf['oslo_concurrency']['lock_path'] = os.path.join(blocker, 'lock')
        conf['os_brick']['lock_path'] = os.path.join(blocker, 'lock')
        with open(path, 'w') as f:
            conf.write(f)

        status, out, took = self.check(copy)
        self.assertEqual(1, status, out)
        rows = self.rows(out)
        self.assertEqual('FAIL', rows[(wrong_password, 'credentials')][0])
        self.assertIn('Keystone refused', rows[(wrong_password,
                                                'credentials')][1])
        self.assertIn('FIX %s/credentials: check cinder_store_user_name'
                      % wrong_password, out)
        self.assertEqual('FAIL', rows[(missing_type, 'volume type')][0])
        self.assertIn('volume type no-such-type does not exist', out)
        self.assertEqual('FAIL', rows[(missing_type, 'lock path')][0])
        self.assertIn('FIX %s/lock path: set [oslo_concurrency] lock_path'
                      % missing_type, out)
        intree = rows[(third, 'in-tree backends')]
        self.assertEqual('warn', intree[0], out)
        self.assertIn("backend(s) legacy use this store's volume type",
                      intree[1])
        self.assertNotIn(('legacy', 'credentials'), rows)
        self.assertLess(took, 60)
        self.assertNoLeftovers()
