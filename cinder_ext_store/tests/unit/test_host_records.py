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

"""The host's records: durable, private, refused when forged."""

import os
import stat
import subprocess
import sys

import fixtures
from glance_store import exceptions

from cinder_ext_store import attachments
from cinder_ext_store import host_records
from cinder_ext_store.tests.unit import base


class TestRecords(base.TestCase):

    def setUp(self):
        super(TestRecords, self).setUp()
        self.records = host_records.Records(
            self.useFixture(fixtures.TempDir()).path)
        self.synced = []
        real = os.fsync

        def fsync(fd):
            st = os.fstat(fd)
            self.synced.append('dir' if stat.S_ISDIR(st.st_mode) else 'file')
            return real(fd)
        self.useFixture(fixtures.MonkeyPatch('os.fsync', fsync))

    def test_a_record_counts_once_file_and_directory_are_synced(self):
        self.records.save('v.json', {'readers': {}})
        # The new directory's parent, the file, the directory after the
        # rename: a power loss keeps the record or the one before it.
        self.assertEqual(['dir', 'file', 'dir'], self.synced)
        self.assertEqual({'readers': {}}, self.records.load('v.json'))
        self.assertEqual([], [n for n in os.listdir(self.records.dir)
                              if n.endswith('.tmp')])
        del self.synced[:]
        self.records.remove('v.json')
        self.assertEqual(['dir'], self.synced)

    def test_private_modes(self):
        self.records.save('v.upload', {'pid': 1})
        self.assertEqual(0o700, stat.S_IMODE(os.stat(self.records.dir)
                                             .st_mode))
        self.assertEqual(0o600, stat.S_IMODE(os.stat(
            self.records.path('v.upload')).st_mode))

    def test_a_record_others_may_write_is_refused(self):
        self.records.save('v.json', {})
        os.chmod(self.records.path('v.json'), 0o620)
        self.assertRaises(exceptions.BackendException, self.records.load,
                          'v.json')

    def test_a_link_is_not_followed(self):
        self.records.ensure_dir()
        target = self.records.path('elsewhere')
        with open(target, 'w') as f:
            f.write('{}')
        os.symlink(target, self.records.path('v.json'))
        self.assertRaises(exceptions.BackendException, self.records.load,
                          'v.json')

    def test_a_directory_others_may_write_is_tightened_when_ours(self):
        self.records.ensure_dir()
        os.chmod(self.records.dir, 0o777)
        records = host_records.Records(os.path.dirname(self.records.dir))
        records.ensure_dir()
        self.assertEqual(0o700, stat.S_IMODE(os.stat(records.dir).st_mode))

    def test_secrets_are_not_kept(self):
        info = {'driver_volume_type': 'iscsi', 'auth_password': 'x',
                'data': {'target_iqn': 'iqn', 'auth_password': 'y',
                         'discovery_auth_password': 'z',
                         'auth_username': 'user'}}
        self.assertEqual({'driver_volume_type': 'iscsi',
                          'data': {'target_iqn': 'iqn',
                                   'auth_username': 'user'}},
                         host_records.without_secrets(info))


class TestBackendRecord(base.TestCase):

    def setUp(self):
        super(TestBackendRecord, self).setUp()
        self.records = host_records.Records(
            self.useFixture(fixtures.TempDir()).path)

    def test_rbd_facts_without_secrets(self):
        self.records.note_backend('rbd', {
            'driver_volume_type': 'rbd',
            'name': 'volumes/volume-5d1c6f4e-0b7a-4c55-9d56-0f2e9c1b8a11',
            'cluster_name': 'ceph', 'auth_username': 'cinder',
            'hosts': ['10.0.0.1'], 'ports': ['6789'], 'keyring': 'SECRET'})
        facts = self.records.load_backend('rbd')
        self.assertEqual({'protocol': 'rbd', 'cluster_name': 'ceph',
                          'auth_username': 'cinder', 'hosts': ['10.0.0.1'],
                          'ports': ['6789'], 'pool': 'volumes',
                          'name_template': 'volume-%s'}, facts)
        with open(self.records.path('backend-rbd.backend')) as f:
            self.assertNotIn('SECRET', f.read())

    def test_legacy_layout_and_other_protocols(self):
        props = attachments.connection_properties({
            'driver_volume_type': 'iscsi',
            'data': {'target_iqn': 'iqn.x', 'auth_password': 'SECRET'}})
        self.records.note_backend('images', props)
        self.assertEqual({'protocol': 'iscsi'},
                         self.records.load_backend('images'))

    def test_written_once_per_process_while_unchanged(self):
        info = {'driver_volume_type': 'local'}
        self.records.note_backend('images', info)
        path = self.records.path('backend-images.backend')
        os.utime(path, (0, 0))
        self.records.note_backend('images', info)
        self.assertEqual(0, os.stat(path).st_mtime)
        self.records.note_backend('images', {'driver_volume_type': 'rbd'})
        self.assertEqual('rbd',
                         self.records.load_backend('images')['protocol'])

    def test_a_name_that_is_no_file_name_is_not_recorded(self):
        self.records.note_backend('../x', {'driver_volume_type': 'rbd'})
        self.records.note_backend(None, {'driver_volume_type': 'rbd'})
        self.assertIsNone(self.records.load_backend('../x'))
        self.assertFalse(os.path.exists(self.records.dir))

    def test_not_a_volume_record(self):
        self.records.note_backend('images', {'driver_volume_type': 'rbd'})
        self.assertEqual(set(), self.records.volumes_named())
        self.assertEqual({}, self.records.leftovers(older_than=0))


class TestJudge(base.TestCase):
    """Who is alive: only a process of this place can be judged."""

    def test_this_process_is_alive(self):
        me = host_records.identity()
        self.assertEqual(os.getpid(), me['pid'])
        self.assertTrue(me['pidns'].startswith('pid:['), me)
        self.assertEqual(host_records.ALIVE, host_records.judge(me))

    def test_a_process_that_ended_is_dead(self):
        child = subprocess.Popen([sys.executable, '-c', 'pass'])
        start = host_records.process_start(child.pid)
        child.wait()
        gone = dict(host_records.identity(), pid=child.pid, start=start)
        self.assertEqual(host_records.DEAD, host_records.judge(gone))
        # A reused pid (another start time) is not the recorded process.
        reused = dict(host_records.identity(), start=-1)
        self.assertEqual(host_records.DEAD, host_records.judge(reused))

    def test_another_place_is_foreign_alive_or_not(self):
        for key, value in (('pidns', 'pid:[1]'), ('boot', 'other-boot'),
                           ('host', 'glance-b')):
            for start in (host_records.identity()['start'], -1):
                other = dict(host_records.identity(), start=start,
                             **{key: value})
                self.assertEqual(host_records.FOREIGN,
                                 host_records.judge(other), key)

    def test_a_record_without_a_place_is_of_this_place(self):
        # Written by a store before places were recorded (an upgrade).
        self.assertEqual(host_records.DEAD, host_records.judge(
            {'pid': 999999999, 'start': 1}))
        self.assertEqual(host_records.ALIVE, host_records.judge(
            {'pid': os.getpid(),
             'start': host_records.identity()['start']}))

    def test_reader_names_carry_the_namespace(self):
        me = host_records.identity()
        name = host_records.key(me)
        self.assertEqual(os.getpid(), host_records.pid_of(name))
        self.assertNotEqual(name, host_records.key(
            dict(me, pidns='pid:[1]')))
        self.assertEqual(12, host_records.pid_of('12'))  # older records
