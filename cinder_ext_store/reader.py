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

"""Reading an image: the iterator :meth:`Store.get
<cinder_ext_store.store.Store.get>` returns, and the range loop under it."""

import collections
from concurrent import futures
import logging
import os
import threading
import time

from glance_store import exceptions

from cinder_ext_store import errors

LOG = logging.getLogger(__name__)


def read_range(device, offset, length, chunk_size, ahead=None):
    """Yield ``length`` bytes of ``device`` from ``offset``.

    ``ahead`` chunks (default: the device's ``read_ahead``) are requested
    in advance by worker threads, so the device is busy while the consumer
    (Glance, a socket) takes the current chunk.

    :raises BackendException: the device ends early (a short image is never
        presented as complete)
    """
    end = offset + length
    spans = [(at, min(chunk_size, end - at))
             for at in range(offset, end, chunk_size)]
    if ahead is None:
        ahead = device.read_ahead
    if ahead < 1 or len(spans) < 2:
        for at, want in spans:
            yield _checked(device, at, want, end)
        return
    pool = futures.ThreadPoolExecutor(
        ahead, thread_name_prefix='cinder-ext-read')
    try:
        pending = collections.deque()
        for at, want in spans:
            pending.append(pool.submit(_checked, device, at, want, end))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        # Early close or an error: drop what was not started.
        pool.shutdown(wait=True, cancel_futures=True)


def _checked(device, at, want, end):
    chunk = device.read_at(at, want)
    if len(chunk) < want:
        raise exceptions.BackendException(
            'Volume %s ended at byte %d, expected %d bytes'
            % (device.volume_id, at + len(chunk), end))
    return chunk


class Orphans(object):
    """Readers dropped without being closed, closed by a thread of their own.

    ``__del__`` runs wherever the garbage collector happens to run: possibly
    in a thread that holds a lock the release needs (oslo.concurrency's
    table of semaphores, the volume's share lock), which would wait for
    itself forever, and with it every later read of the process. So a
    dropped reader is only queued here (``deque.append`` takes no lock and
    may run anywhere), and a thread of the process closes it soon after.

    :param interval: seconds between two looks at the queue
    """

    def __init__(self, interval=0.5, sleep=time.sleep):
        self.interval = interval
        self._sleep = sleep
        self._queue = collections.deque()
        self._start = threading.Lock()
        self._pid = None
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self):
        # A child starts empty: the parent's readers are the parent's to
        # close, and the parent's thread does not exist here.
        self._queue = collections.deque()
        self._start = threading.Lock()
        self._pid = None

    def watch(self):
        """Start this process's closing thread, once (a reader calls it)."""
        if self._pid == os.getpid():
            return
        with self._start:
            if self._pid != os.getpid():
                threading.Thread(target=self._run, daemon=True,
                                 name='cinder-ext-orphans').start()
                self._pid = os.getpid()

    def put(self, reader):
        """Queue a dropped reader (safe from ``__del__``)."""
        self._queue.append(reader)

    def close_all(self):
        """Close the queued readers; the number closed."""
        closed = 0
        while True:
            try:
                reader = self._queue.popleft()
            except IndexError:
                return closed
            try:
                reader.close()
            except Exception:
                LOG.exception('Could not release the attachment of a '
                              'reader dropped by its consumer')
            closed += 1

    def _run(self):
        while True:
            self.close_all()
            self._sleep(self.interval)


#: This process's dropped readers.
ORPHANS = Orphans()


class ImageReader(object):
    """Iterator over a byte range of a volume, attached read-only.

    The attachment is made up front (so errors surface before Glance starts
    answering) and released when the iterator fails, is closed early, and
    *before the last chunk is handed out*: a client that has all the bytes
    may delete the image at once. A reader its consumer drops unclosed is
    released by :class:`Orphans`' thread, within ``interval`` seconds.

    :param shares: this host's
        :class:`~cinder_ext_store.read_share.ReadShares`: the reader joins
        the volume's shared read-only attachment
    :param volume: the image's volume as Cinder just showed it
    :param stats: the :class:`~cinder_ext_store.stats.TransferStats` of
        this read; ``on_release(stats, error)`` is called once, when the
        reader leaves the attachment
    """

    def __init__(self, shares, api, volume, offset, length, chunk_size,
                 stats, on_release, reserve=None, orphans=ORPHANS):
        self._lease = None  # set once attached: __del__ may run early
        self._orphans = orphans
        orphans.watch()
        self._stats = stats
        self._on_release = on_release
        with stats.phase('attach'):
            lease = shares.acquire(api, volume.id, size_gib=volume.size)
        stats.attachments += 1
        # Room for the read-ahead, which depends on the device (RBD keeps
        # more requests in flight): known once attached.
        try:
            self._memory = reserve((lease.device.read_ahead + 1) *
                                   chunk_size) if reserve else None
        except BaseException:
            with stats.phase('detach'):
                lease.release()
            raise
        self._lease = lease
        self._chunks = read_range(lease.device, offset, length, chunk_size)
        self._left = length
        if not length:
            self.close()

    def __iter__(self):
        return self

    def __next__(self):
        if self._lease is None:
            raise StopIteration
        try:
            chunk = next(self._chunks)
        except BaseException as e:
            self.close(error=e)
            errors.raise_as_read_error(e)
        self._left -= len(chunk)
        self._stats.moved(len(chunk))
        if self._left <= 0:
            self.close()
        return chunk

    def close(self, error=None):
        lease, self._lease = self._lease, None
        if lease is None:
            return
        if error is None and self._left > 0:
            # Its consumer stopped reading (a client went away, Glance
            # cancelled its hash pass): not the store's failure.
            self._stats.aborted = True
            error = exceptions.BackendException(
                'the reader was closed by its consumer after %d bytes, %d '
                'left' % (self._stats.bytes, self._left))
        with self._stats.phase('detach'):
            # Stop the read-ahead first: its threads read the device.
            self._chunks.close()
            lease.release()
        if self._memory is not None:
            self._memory.release()
        self._on_release(self._stats, error)

    def __del__(self):
        # Not closed here: see Orphans. The queue keeps the reader alive
        # until its thread has closed it.
        if self._lease is not None:
            self._orphans.put(self)
