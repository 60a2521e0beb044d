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

"""Devices: an attached volume's bytes, as this host reaches them.

:class:`Device` is the contract; :func:`open_device` picks the kind for what
os-brick's ``connect_volume`` returned: a path (:class:`PathDevice`: block
devices, loop devices, files), os-brick's RBD handle (:class:`RbdDevice`:
the librbd image behind it, several requests in flight) or another
file-like handle (:class:`HandleDevice`). Nothing here talks to Cinder.
"""

import abc
import errno
import logging
import mmap
import os
import threading

from glance_store import exceptions

from cinder_ext_store import errors
from cinder_ext_store import tuning as tuning_mod

LOG = logging.getLogger(__name__)

#: O_DIRECT needs offsets, lengths and memory aligned to the device's
#: logical block size; 4 KiB covers every device in use.
ALIGN = 4096

_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def os_error(e, action, volume_id):
    """A glance_store exception for an OSError on volume ``volume_id``."""
    what = '%s volume %s failed: %s' % (action, volume_id, e)
    if e.errno in _FULL:
        return exceptions.StorageFull(message=what)
    if e.errno in _DENIED:
        return exceptions.StorageWriteDenied(message=what)
    return exceptions.BackendException(what)


class Device(metaclass=abc.ABCMeta):
    """What the store needs of an attached volume: positional I/O.

    Offsets are absolute, so a device can be replaced (offline growth
    re-attaches) without losing the position, and nothing is ever
    truncated.
    """

    #: Chunks a reader may request ahead of its consumer, each from a
    #: thread of its own; 0 where :meth:`read_at` is not thread-safe.
    read_ahead = 0

    def __init__(self, volume_id):
        self.volume_id = volume_id
        self._size = None

    def size(self, refresh=False):
        """The device's size in bytes as this host sees it."""
        if self._size is None or refresh:
            self._size = self._measure()
        return self._size

    def _call(self, action, func, *args):
        """``func(*args)``, its errors as glance_store exceptions."""
        try:
            return func(*args)
        except exceptions.GlanceStoreException:
            raise
        except Exception as e:
            raise self._error_for(e, action)

    def _error_for(self, e, action):
        """The glance_store exception for ``e`` raised while ``action``."""
        if isinstance(e, OSError):
            return os_error(e, action, self.volume_id)
        return exceptions.BackendException(
            '%s volume %s failed: %s' % (action, self.volume_id, e))

    @abc.abstractmethod
    def _measure(self):
        """The size in bytes, asked of the device now."""

    @abc.abstractmethod
    def write_at(self, offset, data, aligned=False):
        """Write all of ``data`` at ``offset``.

        :param aligned: ``data`` is page-aligned memory (it may then
            bypass the page cache)
        """

    @abc.abstractmethod
    def read_at(self, offset, length):
        """Up to ``length`` bytes from ``offset``; b'' past the end."""

    @abc.abstractmethod
    def sync(self):
        """Make every write durable; raises when that fails."""

    @abc.abstractmethod
    def close(self):
        """Release what this object opened (never raises)."""


class PathDevice(Device):
    """A block device or a file this host opens by path.

    iSCSI, FC, NVMe, local and loop devices; a file on a share. Has a file
    descriptor: O_DIRECT reads and writes, read-ahead advice, fsync, and
    positional reads that several threads may issue at once.

    :param direct: also open the device with O_DIRECT: aligned writes and
        all reads bypass this host's page cache (falls back to buffered I/O
        where O_DIRECT is refused)
    :param read_ahead: chunks a reader may request ahead (two O_DIRECT
        requests keep a local or SAN device busy: see the README's
        benchmark section)
    """

    def __init__(self, path, writable, volume_id, direct=False,
                 read_ahead=tuning_mod.DEFAULT.block_read_ahead):
        super(PathDevice, self).__init__(volume_id)
        self.read_ahead = read_ahead
        self.path = path
        self.direct_fd = None
        self._buffers = threading.local()
        # Never O_TRUNC or O_CREAT: on file-backed volumes (NFS) truncation
        # would destroy what an earlier attachment wrote.
        flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_CLOEXEC
        try:
            self.fd = os.open(path, flags)
        except OSError as e:
            raise os_error(e, 'opening %s of' % path, volume_id)
        if not writable:
            try:
                os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            except OSError:  # pragma: no cover - advisory only
                pass
        if direct:
            mode = os.O_WRONLY if writable else os.O_RDONLY
            try:
                self.direct_fd = os.open(path, mode | os.O_DIRECT |
                                         os.O_CLOEXEC)
            except OSError as e:
                LOG.info('O_DIRECT refused for %s (%s); using buffered I/O',
                         path, e)
        self._direct_reads = direct and not writable

    def _measure(self):
        return os.lseek(self.fd, 0, os.SEEK_END)

    def write_at(self, offset, data, aligned=False):
        """Write at ``offset``; ``aligned``: ``data`` is page-aligned memory.

        Aligned writes of whole blocks go through O_DIRECT when available.
        """
        view = memoryview(data)
        fd = self.fd
        if (aligned and self.direct_fd is not None and not offset % ALIGN
                and not len(view) % ALIGN):
            fd = self.direct_fd
        try:
            while view:
                done = os.pwrite(fd, view, offset)
                view = view[done:]
                offset += done
        except OSError as e:
            raise os_error(e, 'writing to', self.volume_id)

    def read_at(self, offset, length):
        try:
            if self._direct_reads and self.direct_fd is not None:
                return self._read_direct(offset, length)
            return os.pread(self.fd, length, offset)
        except OSError as e:
            raise os_error(e, 'reading', self.volume_id)

    def _read_direct(self, offset, length):
        """Read through O_DIRECT: the aligned blocks around the range.

        The first buffered read of data written around the page cache
        costs the kernel far more CPU than an O_DIRECT read (the README's
        benchmark section has the figures).
        """
        start = offset - offset % ALIGN
        end = -(-(offset + length) // ALIGN) * ALIGN
        buf = getattr(self._buffers, 'mem', None)
        if buf is None or len(buf) < end - start:
            # One page-aligned buffer per reading thread, kept.
            buf = self._buffers.mem = mmap.mmap(-1, end - start)
        got = os.preadv(self.direct_fd, [memoryview(buf)[:end - start]],
                        start)
        return buf[offset - start:min(got, offset - start + length)]

    def sync(self):
        try:
            for fd in (self.direct_fd, self.fd):
                if fd is not None:
                    os.fsync(fd)
        except OSError as e:
            raise os_error(e, 'flushing', self.volume_id)

    def close(self):
        for name in ('direct_fd', 'fd'):
            fd = getattr(self, name)
            if fd is not None:
                try:
                    os.close(fd)
                except OSError as e:
                    LOG.warning('Closing %s failed: %s', self.path, e)
                setattr(self, name, None)


def _timed_out(e):
    """Whether ``e`` is librbd's timeout (``rbd.Timeout``, ETIMEDOUT)."""
    return abs(getattr(e, 'errno', None) or 0) == errno.ETIMEDOUT


class HandleDevice(Device):
    """A file-like handle os-brick opened.

    Its RBD connector's ``RBDVolumeIOWrapper``: librbd without a kernel
    client. No file descriptor: seek + read/write, ``write`` wants bytes and
    returns None, ``flush`` makes writes durable, and os-brick closes the
    handle itself on disconnect.
    """

    def __init__(self, handle, volume_id):
        super(HandleDevice, self).__init__(volume_id)
        self.handle = handle

    def _measure(self):
        self._call('sizing', self.handle.seek, 0, os.SEEK_END)
        return self._call('sizing', self.handle.tell)

    def write_at(self, offset, data, aligned=False):
        self._call('seeking in', self.handle.seek, offset)
        # librbd wants bytes; RBDVolumeIOWrapper.write returns None.
        self._call('writing to', self.handle.write, bytes(data))

    def read_at(self, offset, length):
        self._call('seeking in', self.handle.seek, offset)
        return self._call('reading', self.handle.read, length)

    def sync(self):
        self._call('flushing', self.handle.flush)

    def close(self):
        # os-brick owns the handle and closes it in disconnect_volume.
        self.handle = None


class RbdDevice(Device):
    """The librbd image behind os-brick's RBD handle, several requests deep.

    librbd serves concurrent requests, and one synchronous 4 MiB write at a
    time leaves most of it idle; so writes go out with ``aio_write``, up to
    ``in_flight`` at once (bounded memory: each keeps its chunk until it
    completes), and reads are positional and thread-safe, so the reader's
    read-ahead can keep several in flight. A failed write is raised by the
    next write or by :meth:`sync`, which also waits for every write before
    it flushes.

    The image is ``RBDVolumeIOWrapper.rbd_image`` (os-brick's ``RBDVolume``,
    which proxies the ``rbd.Image`` it holds as ``image``): public
    attributes of os-brick's RBD connector since its first release. Its
    ``client.client`` is the ``rados.Rados`` connection os-brick opened for
    this attachment alone, where :meth:`limit_waits` sets a timeout.
    """

    def __init__(self, image, volume_id,
                 in_flight=tuning_mod.DEFAULT.rbd_in_flight):
        super(RbdDevice, self).__init__(volume_id)
        self.image = image
        # Each read waits a network round trip to the OSDs: as deep as the
        # writes (the README's benchmark section has the figures).
        self.read_ahead = in_flight
        self.op_timeout = 0  # librbd's default: wait without limit
        self._slots = threading.BoundedSemaphore(in_flight)
        self._in_flight = in_flight
        self._lock = threading.Lock()
        self._error = None

    @classmethod
    def from_handle(cls, handle, volume_id, op_timeout=0,
                    in_flight=tuning_mod.DEFAULT.rbd_in_flight):
        """An RbdDevice for an os-brick RBD handle, or None if not one.

        :param op_timeout: seconds each request may wait for Ceph (0: no
            limit), see :meth:`limit_waits`
        :param in_flight: requests in flight at once
        """
        volume = getattr(handle, 'rbd_image', None)
        image = getattr(volume, 'image', volume)
        if image is None or not all(hasattr(image, name) for name in (
                'aio_write', 'read', 'flush', 'size')):
            return None
        device = cls(image, volume_id, in_flight=in_flight)
        if op_timeout:
            device.limit_waits(getattr(getattr(volume, 'client', None),
                                       'client', None), op_timeout)
        return device

    def limit_waits(self, cluster, seconds):
        """Make requests of this connection fail after ``seconds``.

        librados applies ``rados_osd_op_timeout`` to a connected client at
        once (verified with Ceph 16: a write held by a full cluster fails
        with ETIMEDOUT after the limit). Without the connection, warn: the
        transfer still works, it just cannot fail on a stuck cluster.
        """
        try:
            cluster.conf_set('rados_osd_op_timeout', str(seconds))
        except Exception as e:
            LOG.warning('Cannot limit Ceph waits for volume %s (%s): a '
                        'full or stuck cluster will hold its transfer',
                        self.volume_id, e)
            return
        self.op_timeout = seconds

    def _error_for(self, e, action):
        # A timeout names the limit and what usually causes it.
        if not _timed_out(e):
            return super(RbdDevice, self)._error_for(e, action)
        return errors.TimedOut(
            '%s volume %s failed: Ceph did not complete the request in %d s '
            '(cinder_ext_rbd_op_timeout): the cluster is full or unhealthy, '
            'see ceph health detail (%s)'
            % (action, self.volume_id, self.op_timeout, e))

    def _measure(self):
        return self._call('sizing', self.image.size)

    def _raise_failed(self):
        with self._lock:
            error = self._error
        if error is not None:
            raise self._error_for(error, 'writing to')

    def write_at(self, offset, data, aligned=False):
        self._raise_failed()
        self._slots.acquire()
        chunk = bytes(data)  # kept alive by the closure until completion

        def done(completion, _chunk=chunk):
            result = completion.get_return_value()
            if result < 0:
                with self._lock:
                    if self._error is None:
                        self._error = OSError(
                            -result, '%s at offset %d' % (
                                os.strerror(-result), offset))
            self._slots.release()
        try:
            self._call('writing to', self.image.aio_write, chunk, offset,
                       done)
        except BaseException:
            self._slots.release()  # never submitted
            raise

    def _drain(self):
        """Wait until no write is in flight."""
        for _ in range(self._in_flight):
            self._slots.acquire()
        for _ in range(self._in_flight):
            self._slots.release()

    def read_at(self, offset, length):
        # The cached size: the rescan after an extend refreshes it, and
        # the image a read reads does not change under it.
        size = self.size()
        if offset >= size:
            return b''
        return self._call('reading', self.image.read, offset,
                          min(length, size - offset))

    def sync(self):
        self._drain()
        self._raise_failed()
        self._call('flushing', self.image.flush)

    def close(self):
        # os-brick closes the image on disconnect; no write may still be
        # in flight then.
        if self.image is not None:
            self._drain()
        self.image = None


def open_device(path, writable, volume_id, direct=False, rbd_op_timeout=0,
                tuning=tuning_mod.DEFAULT):
    """A :class:`Device` for what os-brick's ``connect_volume`` returned.

    :param tuning: the :class:`~cinder_ext_store.tuning.Tuning` that says
        how deep reads and RBD writes go
    """
    if isinstance(path, str):
        return PathDevice(path, writable, volume_id, direct=direct,
                          read_ahead=tuning.block_read_ahead)
    return RbdDevice.from_handle(
        path, volume_id, op_timeout=rbd_op_timeout,
        in_flight=tuning.rbd_in_flight) or HandleDevice(path, volume_id)
