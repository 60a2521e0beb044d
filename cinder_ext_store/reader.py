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

from cinder_ext_store import attachments


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

    :param stats: the :class:`~cinder_ext_store.stats.TransferStats` of
        this read; ``on_release(stats, error)`` is called once, when the
        attachment is released
    """

    def __init__(self, api, host, volume_id, offset, length, chunk_size,
                 stats, on_release):
        self._attachment = None  # set once attached: __del__ may run early
        self._stats = stats
        self._on_release = on_release
        attachment = attachments.Attachment(api, host, volume_id, 'ro')
        with stats.phase('attach'):
            device = attachment.open()
        self._attachment = attachment
        stats.attachments += 1
        self._chunks = read_range(device, offset, length, chunk_size)
        self._left = length
        if not length:
            self.close()

    def __iter__(self):
        return self

    def __next__(self):
        if self._attachment is None:
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
        attachment, self._attachment = self._attachment, None
        if attachment is None:
            return
        if error is None and self._left > 0:
            error = exceptions.BackendException(
                'reader closed after %d bytes, %d left'
                % (self._stats.bytes, self._left))
        with self._stats.phase('detach'):
            # Read-only: nothing to flush, so release without strictness.
            attachment.close(succeeded=False)
        self._on_release(self._stats, error)

    def __del__(self):
        self.close()
