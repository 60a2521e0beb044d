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
holders (device-mapper, md, LVM), no mounted partition. Ownership is changed
through a descriptor of the validated inode, so a path swapped after the
check changes nothing. Files on shares (NFS) are not lent: their export
decides who may open them.
"""

import os
import stat

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
    """Why this host already uses block device ``rdev``, or None."""
    mounted = _mounted_devices(mountinfo)
    if rdev in mounted:
        return 'it is mounted'
    if rdev in _swap_devices(swaps):
        return 'it is swap'
    holders = _holders(rdev, sys_root)
    if holders:
        return 'it is held by %s' % ', '.join(sorted(holders))
    if any(part in mounted for part in _partitions(rdev, sys_root)):
        return 'a partition of it is mounted'
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


def _chown(fd, uid):
    # fchown() refuses O_PATH descriptors; the /proc link reaches the same
    # inode without resolving the path again.
    os.chown('/proc/self/fd/%d' % fd, uid, -1)


def lend(path, uid, **probe):
    """Make ``uid`` the owner of device ``path`` (group and mode kept)."""
    if not isinstance(uid, int) or isinstance(uid, bool) or uid <= 0:
        raise Refused('will not lend a device to uid %r' % (uid,))
    fd, st = validated_device(path, **probe)
    try:
        if st.st_uid not in (0, uid):
            raise Refused('%s belongs to uid %d, not root'
                          % (path, st.st_uid))
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
def lend_device(path, uid):
    """:func:`lend`, in the privileged daemon."""
    lend(path, uid)


@default.entrypoint
def return_device(path):
    """:func:`give_back`, in the privileged daemon."""
    give_back(path)


@default.entrypoint
def whoami():
    """The daemon's effective uid (``check`` proves the daemon starts)."""
    return os.geteuid()
