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

from glance_store import exceptions


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


class ImageReader(object):
    """Iterator over a byte range of a volume, attached read-only.

    The attachment is made up front (so errors surface before Glance starts
    answering) and released when the iterator fails, is closed early or is
    garbage-collected, and *before the last chunk is handed out*: a client
    that has all the bytes may delete the image at once.

    :param shares: this host's
        :class:`~cinder_ext_store.read_share.ReadShares`: the reader joins
        the volume's shared read-only attachment
    :param stats: the :class:`~cinder_ext_store.stats.TransferStats` of
        this read; ``on_release(stats, error)`` is called once, when the
        reader leaves the attachment
    """

    def __init__(self, shares, api, volume_id, offset, length, chunk_size,
                 stats, on_release):
        self._lease = None  # set once attached: __del__ may run early
        self._stats = stats
        self._on_release = on_release
        with stats.phase('attach'):
            lease = shares.acquire(api, volume_id)
        self._lease = lease
        stats.attachments += 1
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
            raise
        self._left -= len(chunk)
        self._stats.bytes += len(chunk)
        if self._left <= 0:
            self.close()
        return chunk

    def close(self, error=None):
        lease, self._lease = self._lease, None
        if lease is None:
            return
        if error is None and self._left > 0:
            error = exceptions.BackendException(
                'reader closed after %d bytes, %d left'
                % (self._stats.bytes, self._left))
        with self._stats.phase('detach'):
            lease.release()
        self._on_release(self._stats, error)

    def __del__(self):
        self.close()
