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

"""Image data the tests can check byte for byte, made faster than hashed.

An image is a sequence of 1 MiB blocks; each block starts with its own
offset in the image (8 bytes, little endian) followed by a slice of a
seeded random pattern. Any range of an image can be recomputed on its own
(:meth:`ImageSource.expected`), a misplaced block names where it came
from, and the data do not compress.
"""

import hashlib
import random

from oslo_utils import units

MiB = units.Mi
GiB = units.Gi
BLOCK = MiB
_PATTERN_BLOCKS = 16


def _pattern(seed):
    return random.Random(seed).randbytes(_PATTERN_BLOCKS * BLOCK)


def block(pattern, seed, index):
    """Block ``index`` of the image made from ``pattern``/``seed``."""
    start = (index * 7919 + seed * 104729) % (len(pattern) - BLOCK)
    return ((index * BLOCK).to_bytes(8, 'little') +
            pattern[start:start + BLOCK - 8])


class ImageSource(object):
    """A file-like image of ``size`` bytes; hashes what it hands out.

    :param digests: hashlib names computed over what was read
    :param fail_at: raise IOError once this many bytes were read (a client
        that disconnects)
    :param read_size: hand out this many bytes per read whatever is asked
        (what a client sending fixed chunks does)
    """

    def __init__(self, size, seed=0, digests=('sha256',), fail_at=None,
                 read_size=None):
        self.size = size
        self.seed = seed
        self.given = 0
        self.digests = {name: hashlib.new(name) for name in digests}
        self._pattern = _pattern(seed)
        self._fail_at = fail_at
        self._read_size = read_size
        self._index = -1
        self._block = b''

    def read(self, n=-1):
        if self._fail_at is not None and self.given >= self._fail_at:
            raise IOError('client disconnected after %d bytes' % self.given)
        n = self._read_size or (n if n and n > 0 else BLOCK)
        n = min(n, self.size - self.given)
        if self._fail_at is not None:
            n = min(n, self._fail_at - self.given)
        chunk = self._bytes(self.given, n)
        self.given += len(chunk)
        for digest in self.digests.values():
            digest.update(chunk)
        return chunk

    def _bytes(self, offset, length):
        pieces = []
        while length > 0:
            index, within = divmod(offset, BLOCK)
            if index != self._index:
                self._index = index
                self._block = block(self._pattern, self.seed, index)
            piece = self._block[within:within + length]
            pieces.append(piece)
            offset += len(piece)
            length -= len(piece)
        return pieces[0] if len(pieces) == 1 else b''.join(pieces)

    def hexdigest(self, name='sha256'):
        return self.digests[name].hexdigest()

    def expected(self, offset=0, length=None):
        """The bytes of the image at ``offset`` (all of them by default)."""
        if length is None:
            length = self.size - offset
        length = max(0, min(length, self.size - offset))
        return ImageSource(self.size, self.seed, digests=())._bytes(
            offset, length)


class Unsized(object):
    """A file-like without a length: clients send it chunked."""

    def __init__(self, source):
        self.source = source

    def read(self, n=-1):
        return self.source.read(n)


class FailsAfter(object):
    """A source whose client disconnects after ``good`` bytes.

    :param src: anything with ``read(n)`` (an :class:`ImageSource`, a
        ``BytesIO``)
    """

    def __init__(self, src, good, error=None):
        """:param error: what ``read`` raises then (default an IOError)"""
        self._src = src
        self._left = good
        self._error = error

    def read(self, n):
        if self._left <= 0:
            raise self._error or IOError('client disconnected')
        chunk = self._src.read(min(n, self._left))
        self._left -= len(chunk)
        return chunk
