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

"""What runs as root on this host: the privileged lend on real loop
devices, and an operator's tools on glance-api's records.

Each kind of device a lend must refuse that this kernel can make here: a
loop device in use as swap, one with a mounted ext4, one another program
opened exclusively, one whose size is not the volume's. (Device-mapper, md
and LVM holders are not possible here: the unit tests give sysfs their
shape.)
"""

import os
import subprocess
import tempfile

import fixtures
import testtools

from glance_store import exceptions

from cinder_ext_store import host_records
from cinder_ext_store import privileged

SIZE = 64 << 20
UID = 54321


class TestLendingRealDevices(testtools.TestCase):

    def setUp(self):
        super(TestLendingRealDevices, self).setUp()
        if os.geteuid() != 0:
            self.fail('the functional tests run as root (loop devices)')
        tmp = self.useFixture(fixtures.TempDir()).path
        image = os.path.join(tmp, 'volume.img')
        with open(image, 'wb') as f:
            f.truncate(SIZE)
        self.device = self.run_cmd('losetup', '--find', '--show',
                                   image).strip()
        self.addCleanup(self.run_cmd, 'losetup', '--detach', self.device)
        self.tmp = tmp

    def run_cmd(self, *cmd):
        return subprocess.run(cmd, check=True, capture_output=True,
                              text=True).stdout

    def refused(self, match, size=SIZE):
        e = self.assertRaises(privileged.Refused, privileged.lend,
                              self.device, UID, size)
        self.assertIn(match, str(e))
        self.assertEqual(0, os.stat(self.device).st_uid)

    def test_lends_the_volumes_device_and_takes_it_back(self):
        privileged.lend(self.device, UID, SIZE)
        self.assertEqual(UID, os.stat(self.device).st_uid)
        privileged.give_back(self.device)
        self.assertEqual(0, os.stat(self.device).st_uid)

    def test_a_device_of_another_size_is_not_the_volumes(self):
        self.refused('has %d bytes, not the %d' % (SIZE, SIZE // 2),
                     size=SIZE // 2)

    def test_swap(self):
        self.run_cmd('mkswap', self.device)
        self.run_cmd('swapon', self.device)
        self.addCleanup(self.run_cmd, 'swapoff', self.device)
        self.refused('in use on this host')

    def test_mounted_file_system(self):
        self.run_cmd('mkfs.ext4', '-q', self.device)
        mnt = tempfile.mkdtemp(dir=self.tmp)
        self.run_cmd('mount', self.device, mnt)
        self.addCleanup(self.run_cmd, 'umount', mnt)
        self.refused('in use on this host')

    def test_opened_exclusively_by_another_program(self):
        # What a btrfs or ZFS mount does too (no device number shows it in
        # mountinfo): the kernel refuses a second exclusive open.
        fd = os.open(self.device, os.O_RDONLY | os.O_EXCL)
        self.addCleanup(os.close, fd)
        self.refused('cannot be opened exclusively')


class TestRecordsAsRoot(testtools.TestCase):
    """``cinder-ext-store reconcile`` run by root on glance-api's records."""

    def setUp(self):
        super(TestRecordsAsRoot, self).setUp()
        if os.geteuid() != 0:
            self.fail('the functional tests run as root')
        lock = self.useFixture(fixtures.TempDir()).path
        self.records = host_records.Records(lock)
        os.mkdir(self.records.dir, 0o700)
        os.chown(self.records.dir, UID, UID)  # glance-api's user

    def test_root_writes_as_the_directorys_owner(self):
        self.records.save('v.json', {'readers': {}})
        st = os.stat(self.records.path('v.json'))
        self.assertEqual((UID, 0o600), (st.st_uid, st.st_mode & 0o777))
        self.assertEqual({'readers': {}}, self.records.load('v.json'))

    def test_a_record_of_another_owner_is_refused(self):
        path = self.records.path('forged.json')
        with open(path, 'w') as f:
            f.write('{}')
        os.chmod(path, 0o600)  # root's, in glance-api's directory
        e = self.assertRaises(exceptions.BackendException,
                              self.records.load, 'forged.json')
        self.assertIn('not written by this store', str(e))
