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

"""The one thing this store does as root: lend glance-api an attached device.

os-brick attaches volumes through its own privsep daemon, and the block
devices it returns belong to root (``root:disk 0660``). A glance-api that is
not root must still open the device it attached. Rather than put its user in
group ``disk`` (every disk of the host) or allow ``chown`` with any
arguments through rootwrap (what the in-tree driver needs), this module's
privsep daemon makes glance-api's user the owner of one validated device
(:func:`lend_device`) and gives it back to root when the volume is detached
(:func:`return_device`).

Validation (:func:`validated_device`) trusts nothing of the path it is
given: it must be absolute, normalized and under ``/dev``, resolve (symlinks
followed, as ``/dev/disk/by-*`` links are) to a block device under ``/dev``,
and that device must not be in use by this host: not mounted, not swap, no
holders (device-mapper, md, LVM), nor any of its partitions. A lend also
opens the device exclusively (``O_EXCL``: the kernel refuses it while a
file system - btrfs and ZFS too, whose mounts show no device number -,
swap, md, LVM or another program holds it) and insists that it has the
volume's size, so only a device that fits the attachment is lent. The uid
it is lent to is the caller's (the peer of the daemon's socket), never an
argument. Ownership is changed through a descriptor of the validated inode,
so a path swapped after the check changes nothing. Files on shares (NFS)
are not lent: their export decides who may open them.

These checks harden one narrow privilege; they are not a boundary: the
rootwrap filters also let glance-api's user start os-brick's privsep
daemon, which runs commands as root by design (as in Nova and Cinder).
"""

import errno
import os
import socket
import stat
import struct

from oslo_privsep import capabilities as caps
from oslo_privsep import priv_context

#: Started through ``[cinder_ext_store_privileged] helper_command`` (or the
#: store's ``rootwrap_config`` when unset), like os-brick's daemon.
default = priv_context.PrivContext(
    'cinder_ext_store',
    cfg_section='cinder_ext_store_privileged',
    pypath=__name__ + '.default',
    capabilities=[caps.CAP_CHOWN, caps.CAP_DAC_READ_SEARCH],
    logger_name=__name__)

DEV = '/dev/'


class Refused(ValueError):
    """A path the privileged side will not touch, and why."""


def _mounted_devices(mountinfo='/proc/self/mountinfo'):
    """``st_rdev`` values of the block devices mounted on this host."""
    found = set()
    with open(mountinfo) as f:
        for line in f:
            try:
                major, minor = line.split()[2].split(':')
                found.add(os.makedev(int(major), int(minor)))
            except (IndexError, ValueError):
                continue
    return found


def _swap_devices(swaps='/proc/swaps'):
    found = set()
    try:
        with open(swaps) as f:
            names = [line.split()[0] for line in f.readlines()[1:]]
    except OSError:
        return found
    for name in names:
        try:
            st = os.stat(name)
        except OSError:
            continue
        if stat.S_ISBLK(st.st_mode):
            found.add(st.st_rdev)
    return found


def _sysfs(rdev, sys_root='/sys/dev/block'):
    return os.path.join(sys_root, '%d:%d' % (os.major(rdev),
                                             os.minor(rdev)))


def _partitions(rdev, sys_root='/sys/dev/block'):
    """``st_rdev`` of the partitions of the disk ``rdev``."""
    base = _sysfs(rdev, sys_root)
    found = []
    try:
        names = os.listdir(base)
    except OSError:
        return found
    for name in names:
        try:
            with open(os.path.join(base, name, 'dev')) as f:
                major, minor = f.read().strip().split(':')
            if os.path.exists(os.path.join(base, name, 'partition')):
                found.append(os.makedev(int(major), int(minor)))
        except (OSError, ValueError):
            continue
    return found


def _holders(rdev, sys_root='/sys/dev/block'):
    try:
        return os.listdir(os.path.join(_sysfs(rdev, sys_root), 'holders'))
    except OSError:
        return []


def in_use(rdev, mountinfo='/proc/self/mountinfo', swaps='/proc/swaps',
           sys_root='/sys/dev/block'):
    """Why this host already uses block device ``rdev``, or None.

    The device itself and each of its partitions: mounted, swap, or held
    (device-mapper, md, LVM).
    """
    mounted = _mounted_devices(mountinfo)
    swap = _swap_devices(swaps)
    for dev, what in [(rdev, 'it')] + [
            (part, 'a partition of it')
            for part in _partitions(rdev, sys_root)]:
        if dev in mounted:
            return '%s is mounted' % what
        if dev in swap:
            return '%s is swap' % what
        holders = _holders(dev, sys_root)
        if holders:
            return '%s is held by %s' % (what, ', '.join(sorted(holders)))
    return None


def validated_device(path, **probe):
    """Open ``path`` as an ``O_PATH`` descriptor, if it may be lent.

    :returns: (descriptor, its stat); the caller closes the descriptor
    :raises Refused: the path is not an unused block device under /dev
    :param probe: where :func:`in_use` looks (tests)
    """
    if not isinstance(path, str) or not path:
        raise Refused('not a path: %r' % (path,))
    if not os.path.isabs(path) or os.path.normpath(path) != path or \
            '..' in path.split('/'):
        raise Refused('%s is not an absolute, normalized path' % path)
    real = os.path.realpath(path)
    if not path.startswith(DEV) or not real.startswith(DEV):
        raise Refused('%s is not under %s (resolves to %s)'
                      % (path, DEV, real))
    try:
        fd = os.open(real, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise Refused('%s cannot be opened: %s' % (real, e))
    try:
        st = os.fstat(fd)
        if not stat.S_ISBLK(st.st_mode):
            raise Refused('%s is not a block device' % real)
        why = in_use(st.st_rdev, **probe)
        if why:
            raise Refused('%s is in use on this host: %s' % (real, why))
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _claim(path, st, size):
    """Open the validated device exclusively; check it is what was lent.

    :raises Refused: another holder (``EBUSY``), another device at the path
        by now, or a size that is not the volume's
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.EBUSY:
            raise Refused('%s is in use on this host: it cannot be opened '
                          'exclusively (a file system, swap, md, LVM or '
                          'another program holds it)' % path)
        raise Refused('%s cannot be opened: %s' % (path, e))
    try:
        now = os.fstat(fd)
        if not stat.S_ISBLK(now.st_mode) or now.st_rdev != st.st_rdev:
            raise Refused('%s changed while it was checked' % path)
        actual = os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)
    if actual != size:
        raise Refused('%s has %d bytes, not the %d of the volume being '
                      'attached' % (path, actual, size))


def peer_uids(fds=None):
    """The uids at the other end of this process's Unix sockets.

    In the privileged daemon that is glance-api, which connected to it:
    the uid a device is lent to comes from the kernel, not from a message.
    """
    found = set()
    for fd in fds if fds is not None else _fds():
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            dup = os.dup(fd)
        except OSError:
            continue
        try:
            sock = socket.socket(fileno=dup)
        except OSError:
            os.close(dup)
            continue
        with sock:
            try:
                if sock.family != socket.AF_UNIX:
                    continue
                creds = sock.getsockopt(socket.SOL_SOCKET,
                                        socket.SO_PEERCRED,
                                        struct.calcsize('3i'))
            except OSError:
                continue
            pid, uid, _gid = struct.unpack('3i', creds)
            if pid > 0:
                found.add(uid)
    return found


def _fds():
    return [int(n) for n in os.listdir('/proc/self/fd')]


def caller_uid(fds=None):
    """The one non-root uid this daemon serves.

    :raises Refused: none (a root caller needs no lend) or several
    """
    uids = peer_uids(fds) - {0}
    if len(uids) != 1:
        raise Refused('cannot tell whom to lend to: the daemon\'s peers are '
                      'uids %s' % (sorted(uids) or 'root only'))
    return uids.pop()


def _chown(fd, uid):
    # fchown() refuses O_PATH descriptors; the /proc link reaches the same
    # inode without resolving the path again.
    os.chown('/proc/self/fd/%d' % fd, uid, -1)


def lend(path, uid, size, **probe):
    """Make ``uid`` the owner of device ``path`` (group and mode kept).

    :param size: the bytes of the volume being attached; the device must
        have exactly these
    """
    if not isinstance(uid, int) or isinstance(uid, bool) or uid <= 0:
        raise Refused('will not lend a device to uid %r' % (uid,))
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise Refused('will not lend a device for a size of %r' % (size,))
    fd, st = validated_device(path, **probe)
    try:
        if st.st_uid not in (0, uid):
            raise Refused('%s belongs to uid %d, not root'
                          % (path, st.st_uid))
        _claim(os.path.realpath(path), st, size)
        _chown(fd, uid)
    finally:
        os.close(fd)


def give_back(path, **probe):
    """Make root the owner of device ``path`` again."""
    fd, st = validated_device(path, **probe)
    try:
        if st.st_uid != 0:
            _chown(fd, 0)
    finally:
        os.close(fd)


@default.entrypoint
def lend_device(path, size):
    """:func:`lend` to the caller's uid, in the privileged daemon."""
    lend(path, caller_uid(), size)


@default.entrypoint
def return_device(path):
    """:func:`give_back`, in the privileged daemon."""
    give_back(path)


@default.entrypoint
def whoami():
    """The daemon's effective uid (``check`` proves the daemon starts)."""
    return os.geteuid()
