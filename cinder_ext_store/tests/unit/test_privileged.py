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

"""The privileged side trusts nothing of the path glance-api hands it."""

import glob
import os
import shutil
import socket
import stat
import tempfile
from unittest import mock

import ddt
import fixtures

from cinder_ext_store import privileged
from cinder_ext_store.tests.unit import base

GIB = 1 << 30


def _a_block_device():
    for path in sorted(glob.glob('/dev/loop[0-9]*')) + sorted(
            glob.glob('/dev/*')):
        try:
            if stat.S_ISBLK(os.lstat(path).st_mode):
                return path
        except OSError:
            continue
    raise AssertionError('this host has no block device under /dev')


def owned_by(uid):
    """Patch os.fstat: every file seems to belong to ``uid``."""
    real_fstat = os.fstat

    def fstat(fd):
        st = real_fstat(fd)
        return mock.Mock(st_mode=st.st_mode, st_rdev=st.st_rdev, st_uid=uid)
    return mock.patch('os.fstat', fstat)


class ProbeFixture(fixtures.Fixture):
    """A fake /proc and /sys for :func:`privileged.in_use`."""

    def _setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.mountinfo = os.path.join(self.dir, 'mountinfo')
        self.swaps = os.path.join(self.dir, 'swaps')
        self.sys_root = os.path.join(self.dir, 'sys')
        os.mkdir(self.sys_root)
        self.mounts([])
        with open(self.swaps, 'w') as f:
            f.write('Filename Type Size Used Priority\n')

    @property
    def probe(self):
        return dict(mountinfo=self.mountinfo, swaps=self.swaps,
                    sys_root=self.sys_root)

    def mounts(self, rdevs):
        with open(self.mountinfo, 'w') as f:
            f.write('22 1 0:21 / /proc rw - proc proc rw\n')
            for n, rdev in enumerate(rdevs):
                f.write('%d 1 %d:%d / /mnt%d rw - ext4 /dev/x rw\n'
                        % (30 + n, os.major(rdev), os.minor(rdev), n))

    def disk(self, rdev, holders=(), partitions=()):
        base = os.path.join(self.sys_root, '%d:%d' % (os.major(rdev),
                                                      os.minor(rdev)))
        os.makedirs(os.path.join(base, 'holders'))
        for holder in holders:
            os.mkdir(os.path.join(base, 'holders', holder))
        for n, part in enumerate(partitions):
            d = os.path.join(base, 'part%d' % n)
            os.mkdir(d)
            with open(os.path.join(d, 'dev'), 'w') as f:
                f.write('%d:%d\n' % (os.major(part), os.minor(part)))
            open(os.path.join(d, 'partition'), 'w').close()


@ddt.ddt
class TestValidatedDevice(base.TestCase):

    def setUp(self):
        super(TestValidatedDevice, self).setUp()
        self.probe = self.useFixture(ProbeFixture())
        self.device = _a_block_device()
        self.rdev = os.stat(self.device).st_rdev
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.chowned = []
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.privileged._chown',
            lambda fd, uid: self.chowned.append((os.fstat(fd).st_rdev,
                                                 uid))))
        # The exclusive open and the size, on real loop devices:
        # functional/test_device_lending.
        self.claimed = []
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.privileged._claim',
            lambda path, st, size: self.claimed.append((st.st_rdev, size))))

    def refused(self, path, match):
        e = self.assertRaises(privileged.Refused, privileged.lend, path,
                              1000, GIB, **self.probe.probe)
        self.assertIn(match, str(e))
        self.assertEqual([], self.chowned)

    def test_lends_an_unused_block_device(self):
        privileged.lend(self.device, 1000, GIB, **self.probe.probe)
        self.assertEqual([(self.rdev, 1000)], self.chowned)
        self.assertEqual([(self.rdev, GIB)], self.claimed)

    def test_gives_back_to_root(self):
        with owned_by(1000):
            privileged.give_back(self.device, **self.probe.probe)
        self.assertEqual([(self.rdev, 0)], self.chowned)

    @ddt.data('/dev/../etc/shadow', '/dev/./loop0', '/dev//loop0',
              'dev/loop0', '../dev/loop0', '/dev/loop0/', '')
    def test_unnormalized_paths(self, path):
        self.refused(path, 'path')

    @ddt.data(None, b'/dev/loop0', 7, ['/dev/loop0'])
    def test_not_a_string(self, path):
        self.refused(path, 'not a path')

    @ddt.data('/etc/passwd', '/etc/shadow', '/tmp', '/proc/self/mem',
              '/sys/block')
    def test_paths_outside_dev(self, path):
        self.refused(path, 'not under /dev/')

    def test_symlink_outside_dev_to_a_device(self):
        # Only what os-brick hands out: paths under /dev.
        link = os.path.join(self.tmp, 'disk')
        os.symlink(self.device, link)
        self.refused(link, 'not under /dev/')

    def test_symlink_under_dev_to_a_file_outside(self):
        link = tempfile.mktemp(dir='/dev/shm')
        os.symlink('/etc/shadow', link)
        self.addCleanup(os.unlink, link)
        self.refused(link, 'resolves to /etc/shadow')

    def test_symlink_under_dev_to_a_device_is_followed(self):
        # /dev/disk/by-path/... links are what iSCSI and FC connectors return
        link = tempfile.mktemp(dir='/dev/shm')
        os.symlink(self.device, link)
        self.addCleanup(os.unlink, link)
        privileged.lend(link, 1000, GIB, **self.probe.probe)
        self.assertEqual([(self.rdev, 1000)], self.chowned)

    def test_regular_file_where_a_device_was_expected(self):
        path = tempfile.mktemp(dir='/dev/shm')
        open(path, 'w').close()
        self.addCleanup(os.unlink, path)
        self.refused(path, 'not a block device')

    @ddt.data('/dev/null', '/dev/zero', '/dev/shm')
    def test_character_devices_and_directories(self, path):
        self.refused(path, 'not a block device')

    def test_missing_device(self):
        self.refused('/dev/no-such-device-here', 'cannot be opened')

    def test_mounted_device(self):
        self.probe.mounts([self.rdev])
        self.refused(self.device, 'it is mounted')

    def test_device_with_a_mounted_partition(self):
        part = os.makedev(os.major(self.rdev), os.minor(self.rdev) + 100)
        self.probe.disk(self.rdev, partitions=[part])
        self.probe.mounts([part])
        self.refused(self.device, 'a partition of it is mounted')

    def test_device_held_by_device_mapper(self):
        self.probe.disk(self.rdev, holders=['dm-0'])
        self.refused(self.device, 'held by dm-0')

    def test_swap_device(self):
        with open(self.probe.swaps, 'a') as f:
            f.write('%s partition 1024 0 -2\n' % self.device)
        self.refused(self.device, 'it is swap')

    def test_device_of_another_user(self):
        with owned_by(4242):
            self.refused(self.device, 'belongs to uid 4242')

    @ddt.data(0, -1, True, '1000', None)
    def test_bad_uid(self, uid):
        e = self.assertRaises(privileged.Refused, privileged.lend,
                              self.device, uid, GIB, **self.probe.probe)
        self.assertIn('uid', str(e))
        self.assertEqual([], self.chowned)

    @ddt.data(0, -1, None, '1073741824', 1.5)
    def test_bad_size(self, size):
        e = self.assertRaises(privileged.Refused, privileged.lend,
                              self.device, 1000, size, **self.probe.probe)
        self.assertIn('size', str(e))
        self.assertEqual([], self.chowned)

    def test_swap_partition(self):
        part = os.makedev(os.major(self.rdev), os.minor(self.rdev) + 100)
        self.probe.disk(self.rdev, partitions=[part])
        node = tempfile.mktemp(dir='/dev/shm')
        os.mknod(node, 0o600 | stat.S_IFBLK, part)
        self.addCleanup(os.unlink, node)
        with open(self.probe.swaps, 'a') as f:
            f.write('%s partition 1024 0 -2\n' % node)
        self.refused(self.device, 'a partition of it is swap')

    @ddt.data('md127', 'dm-3')  # an md member, an LVM physical volume
    def test_partition_held_by_md_or_lvm(self, holder):
        # No device-mapper or md here: sysfs as the kernel shows them.
        part = os.makedev(os.major(self.rdev), os.minor(self.rdev) + 100)
        self.probe.disk(self.rdev, partitions=[part])
        self.probe.disk(part, holders=[holder])
        self.refused(self.device, 'a partition of it is held by %s' % holder)

    def test_swap_of_the_path_after_the_check_changes_nothing(self):
        # The owner changes on the inode validated, through its descriptor.
        link = tempfile.mktemp(dir='/dev/shm')
        os.symlink(self.device, link)
        self.addCleanup(lambda: os.path.lexists(link) and os.unlink(link))
        real = privileged.validated_device

        def then_swap(path, **probe):
            fd, st = real(path, **probe)
            os.unlink(link)
            os.symlink('/etc/shadow', link)
            return fd, st
        with mock.patch.object(privileged, 'validated_device', then_swap):
            privileged.lend(link, 1000, GIB, **self.probe.probe)
        self.assertEqual([(self.rdev, 1000)], self.chowned)


class TestRealProbe(base.TestCase):
    """The real /proc/self/mountinfo: the root filesystem is in use."""

    def test_root_filesystem_device_is_refused_if_a_block_device(self):
        rdev = os.stat('/').st_dev
        mounted = privileged._mounted_devices()
        self.assertIn(rdev, mounted)
        self.assertEqual('it is mounted', privileged.in_use(rdev))


@ddt.ddt
class TestCaller(base.TestCase):
    """The uid a device is lent to comes from the kernel."""

    def test_peer_of_a_unix_socket(self):
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        self.assertEqual({os.geteuid()}, privileged.peer_uids(
            [a.fileno()]))

    def test_other_descriptors_are_ignored_and_nothing_leaks(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        before = len(os.listdir('/proc/self/fd'))
        for _ in range(50):
            self.assertEqual(set(), privileged.peer_uids([r, w, 987654]))
            privileged.peer_uids()
        self.assertEqual(before, len(os.listdir('/proc/self/fd')))

    def test_one_non_root_peer(self):
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.privileged.peer_uids', lambda fds: {0, 999}))
        self.assertEqual(999, privileged.caller_uid())

    @ddt.data(set(), {0}, {999, 1000})
    def test_no_single_caller_is_refused(self, uids):
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.privileged.peer_uids', lambda fds: uids))
        self.assertRaises(privileged.Refused, privileged.caller_uid)
