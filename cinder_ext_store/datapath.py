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
import mmap
import os

from glance_store import exceptions

LOG = logging.getLogger(__name__)

#: Size of the pipeline's buffers, and of every device write but the last.
BUFFER_SIZE = 4 * 1024 * 1024
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
    """A block device or a file, through an OS file descriptor.

    :param direct: also open the device with O_DIRECT for aligned writes
        (falls back to buffered writes where O_DIRECT is refused)
    """

    def __init__(self, path, writable, volume_id, direct=False):
        super(FdDevice, self).__init__(volume_id)
        self.path = path
        self.direct_fd = None
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
        elif direct:
            try:
                self.direct_fd = os.open(path, os.O_WRONLY | os.O_DIRECT |
                                         os.O_CLOEXEC)
            except OSError as e:
                LOG.info('O_DIRECT refused for %s (%s); writing buffered',
                         path, e)

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
            return os.pread(self.fd, length, offset)
        except OSError as e:
            raise os_error(e, 'reading', self.volume_id)

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


def open_device(path, writable, volume_id, direct=False):
    """A :class:`Device` for what os-brick's ``connect_volume`` returned."""
    if isinstance(path, str):
        return FdDevice(path, writable, volume_id, direct=direct)
    return HandleDevice(path, volume_id)


class Hashes(object):
    """md5, the multihash and the signature verifier of one image.

    Each digest has a worker thread of its own (hashlib releases the GIL on
    large buffers, so md5 and the multihash run on both cores); a single
    worker per digest keeps the updates in order.
    """

    def __init__(self, hashing_algo, verifier=None):
        try:
            self.multihash = hashlib.new(hashing_algo)
        except (ValueError, TypeError):
            raise exceptions.UnknownHashingAlgo(algo=hashing_algo)
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.verifier = verifier
        self._workers = [futures.ThreadPoolExecutor(
            1, thread_name_prefix='cinder-ext-%s' % name)
            for name in ('md5', 'multihash')]
        self._pending = []

    def _md5_and_verifier(self, data):
        self.md5.update(data)
        if self.verifier is not None:
            self.verifier.update(bytes(data))

    def submit(self, data):
        """Queue ``data`` for every digest; returns the jobs."""
        jobs = [self._workers[0].submit(self._md5_and_verifier, data),
                self._workers[1].submit(self.multihash.update, data)]
        self._pending.extend(jobs)
        if len(self._pending) > 64:
            # Keep only what is still running: memory stays flat.
            done = [job for job in self._pending if job.done()]
            self._pending = [job for job in self._pending if not job.done()]
            wait_all(done)
        return jobs

    def update(self, data):
        """Hash ``data`` now (for callers without a pipeline)."""
        wait_all(self.submit(data))

    def wait(self):
        pending, self._pending = self._pending, []
        wait_all(pending)

    def close(self):
        for worker in self._workers:
            worker.shutdown(wait=True, cancel_futures=True)

    def hexdigests(self):
        self.wait()
        return self.md5.hexdigest(), self.multihash.hexdigest()


def wait_all(jobs):
    """Wait for every job; then raise the first failure, if any."""
    error = None
    for job in jobs:
        try:
            job.result()
        except BaseException as e:
            error = error or e
    if error is not None:
        raise error


class _Slot(object):
    """A page-aligned buffer (anonymous mmap) and the jobs still using it."""

    def __init__(self):
        self.buf = mmap.mmap(-1, BUFFER_SIZE)
        self.used = 0
        self.jobs = []

    def close(self):
        try:
            self.buf.close()
        except BufferError:  # a finished job still holds a view: GC frees it
            pass


def copy_image(source, target, expected_size, hashes, read_size):
    """Copy ``source`` into ``target``; returns the number of bytes.

    A bounded pipeline: the caller's thread reads the source into one of two
    4 MiB buffers while the other is hashed (md5, multihash) and written by
    worker threads; a buffer is refilled only when its jobs are done, so
    memory stays flat whatever the image size. The first failure stops the
    copy and is raised once every job has finished.

    :param source: file-like with ``read(n)``; b'' means the end
    :param target: has ``device`` and ``ensure_capacity(end_offset)``; the
        device may be replaced by ``ensure_capacity`` (offline growth), so
        no write is in flight when it is called
    :param expected_size: declared size, or 0 when unknown
    :raises Invalid: more or fewer bytes than declared
    """
    writer = futures.ThreadPoolExecutor(1, thread_name_prefix='cinder-ext-io')
    slots = [_Slot(), _Slot()]
    current = 0
    flushed = 0  # where the next buffer starts in the image
    total = 0

    def flush(slot):
        nonlocal flushed
        view = memoryview(slot.buf)[:slot.used]
        start = flushed
        slot.jobs = hashes.submit(view) + [writer.submit(
            lambda: target.device.write_at(start, view, aligned=True))]
        flushed += slot.used

    def drain():
        # Only the two buffers' latest jobs can still be running.
        for slot in slots:
            jobs, slot.jobs = slot.jobs, []
            wait_all(jobs)

    try:
        while True:
            chunk = source.read(read_size)
            if not chunk:
                break
            end = total + len(chunk)
            if expected_size and end > expected_size:
                raise exceptions.Invalid(
                    message='Image has more data than its declared size of '
                            '%d bytes' % expected_size)
            if end > target.device.size():
                drain()  # growth may detach the device
                target.ensure_capacity(end)
            view = memoryview(chunk)
            while view:
                slot = slots[current]
                take = min(len(view), BUFFER_SIZE - slot.used)
                slot.buf[slot.used:slot.used + take] = view[:take]
                slot.used += take
                view = view[take:]
                if slot.used == BUFFER_SIZE:
                    flush(slot)
                    current = 1 - current
                    nxt = slots[current]
                    wait_all(nxt.jobs)
                    nxt.jobs, nxt.used = [], 0
            total = end
        if slots[current].used:
            flush(slots[current])
        drain()
    except BaseException:
        # Cancel on first error: let running jobs end, keep the cause.
        pending = [job for slot in slots for job in slot.jobs]
        for job in pending:
            job.cancel()
        futures.wait(pending)
        raise
    finally:
        writer.shutdown(wait=True)
        for slot in slots:
            slot.close()
    if expected_size and total != expected_size:
        raise exceptions.Invalid(
            message='Image ended after %d bytes, its declared size is %d '
                    'bytes' % (total, expected_size))
    return total


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
