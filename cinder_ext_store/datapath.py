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

"""The data path: devices, hashing, copying an image in, reading it out.

Nothing here talks to Cinder. A :class:`Device` is an attached volume's bytes,
either a path this host can open (block device, file on a share) or the
file-like handle os-brick returns for RBD. Writes are positional, so a device
can be replaced (offline growth re-attaches) without losing the offset, and
no device is ever opened with truncation.
"""

from concurrent import futures
import errno
import hashlib
import logging
import os

from glance_store import exceptions

LOG = logging.getLogger(__name__)

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


class Device(object):
    """Positional access to an attached volume."""

    def __init__(self, volume_id):
        self.volume_id = volume_id
        self._size = None

    def size(self, refresh=False):
        """The device's size in bytes as this host sees it."""
        if self._size is None or refresh:
            self._size = self._measure()
        return self._size


class FdDevice(Device):
    """A block device or a file, through an OS file descriptor."""

    def __init__(self, path, writable, volume_id):
        super(FdDevice, self).__init__(volume_id)
        self.path = path
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

    def _measure(self):
        return os.lseek(self.fd, 0, os.SEEK_END)

    def write_at(self, offset, data):
        view = memoryview(data)
        try:
            while view:
                done = os.pwrite(self.fd, view, offset)
                view = view[done:]
                offset += done
        except OSError as e:
            raise os_error(e, 'writing to', self.volume_id)

    def read_at(self, offset, length):
        try:
            return os.pread(self.fd, length, offset)
        except OSError as e:
            raise os_error(e, 'reading', self.volume_id)

    def sync(self):
        try:
            os.fsync(self.fd)
        except OSError as e:
            raise os_error(e, 'flushing', self.volume_id)

    def close(self):
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError as e:
                LOG.warning('Closing %s failed: %s', self.path, e)
            self.fd = None


class HandleDevice(Device):
    """A file-like handle (os-brick's RBD wrapper): seek + read/write."""

    def __init__(self, handle, volume_id):
        super(HandleDevice, self).__init__(volume_id)
        self.handle = handle

    def _call(self, action, func, *args):
        try:
            return func(*args)
        except OSError as e:
            raise os_error(e, action, self.volume_id)
        except exceptions.GlanceStoreException:
            raise
        except Exception as e:
            raise exceptions.BackendException(
                '%s volume %s failed: %s' % (action, self.volume_id, e))

    def _measure(self):
        self._call('sizing', self.handle.seek, 0, os.SEEK_END)
        return self._call('sizing', self.handle.tell)

    def write_at(self, offset, data):
        self._call('seeking in', self.handle.seek, offset)
        # RBDVolumeIOWrapper.write returns None: count by our own bytes.
        self._call('writing to', self.handle.write, data)

    def read_at(self, offset, length):
        self._call('seeking in', self.handle.seek, offset)
        return self._call('reading', self.handle.read, length)

    def sync(self):
        self._call('flushing', self.handle.flush)

    def close(self):
        # os-brick owns the handle and closes it in disconnect_volume.
        self.handle = None


def open_device(path, writable, volume_id):
    """A :class:`Device` for what os-brick's ``connect_volume`` returned."""
    if isinstance(path, str):
        return FdDevice(path, writable, volume_id)
    return HandleDevice(path, volume_id)


class Hashes(object):
    """md5, the multihash and the signature verifier of one image.

    md5 and the multihash each run on a worker thread (hashlib releases the
    GIL for large buffers), overlapping with each other and with the
    caller's write of the same chunk; at most one chunk is in flight.
    """

    def __init__(self, hashing_algo, verifier=None):
        try:
            self.multihash = hashlib.new(hashing_algo)
        except (ValueError, TypeError):
            raise exceptions.UnknownHashingAlgo(algo=hashing_algo)
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.verifier = verifier
        self._pool = futures.ThreadPoolExecutor(
            2, thread_name_prefix='cinder-ext-hash')
        self._pending = ()

    def update(self, chunk):
        """Start hashing ``chunk``; the previous chunk must be done first."""
        self.wait()
        self._pending = (self._pool.submit(self.md5.update, chunk),
                         self._pool.submit(self.multihash.update, chunk))
        if self.verifier is not None:
            self.verifier.update(chunk)

    def wait(self):
        for job in self._pending:
            job.result()
        self._pending = ()

    def close(self):
        self._pool.shutdown(wait=True, cancel_futures=True)

    def hexdigests(self):
        self.wait()
        return self.md5.hexdigest(), self.multihash.hexdigest()


def copy_image(source, target, expected_size, hashes, read_size):
    """Copy ``source`` into ``target``; returns the number of bytes.

    :param source: file-like with ``read(n)``; b'' means the end
    :param target: has ``device`` and ``ensure_capacity(end_offset)``
    :param expected_size: declared size, or 0 when unknown
    :raises Invalid: more or fewer bytes than declared
    """
    offset = 0
    while True:
        chunk = source.read(read_size)
        if not chunk:
            break
        end = offset + len(chunk)
        if expected_size and end > expected_size:
            raise exceptions.Invalid(
                message='Image has more data than its declared size of %d '
                        'bytes' % expected_size)
        target.ensure_capacity(end)
        hashes.update(chunk)
        target.device.write_at(offset, chunk)
        offset = end
    hashes.wait()
    if expected_size and offset != expected_size:
        raise exceptions.Invalid(
            message='Image ended after %d bytes, its declared size is %d '
                    'bytes' % (offset, expected_size))
    return offset


def read_range(device, offset, length, chunk_size):
    """Yield ``length`` bytes of ``device`` from ``offset``.

    :raises BackendException: the device ends early (a short image is never
        presented as complete)
    """
    end = offset + length
    while offset < end:
        want = min(chunk_size, end - offset)
        chunk = device.read_at(offset, want)
        if not chunk:
            raise exceptions.BackendException(
                'Volume %s ended at byte %d, expected %d bytes'
                % (device.volume_id, offset, end))
        offset += len(chunk)
        yield chunk
