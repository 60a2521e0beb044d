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

"""The digests of one image: md5 (Glance's checksum), the multihash and
the signature verifier, each fed in order by a worker thread of its own.
"""

from concurrent import futures
import hashlib

from glance_store import exceptions


class ImageHashes(object):
    """md5, the multihash and the signature verifier of one image.

    Each digest has a worker thread of its own (hashlib releases the GIL on
    large buffers, so md5 and the multihash run on both cores); a single
    worker per digest keeps the updates in order. The caller tracks the
    jobs :meth:`submit` returns and reads :meth:`hexdigests` once they are
    all done.
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

    def _md5_and_verifier(self, data):
        self.md5.update(data)
        if self.verifier is not None:
            self.verifier.update(bytes(data))

    def submit(self, data):
        """Queue ``data`` for every digest; returns the jobs (futures)."""
        return [self._workers[0].submit(self._md5_and_verifier, data),
                self._workers[1].submit(self.multihash.update, data)]

    def hexdigests(self):
        """(md5, multihash) hex digests; every job must have finished."""
        return self.md5.hexdigest(), self.multihash.hexdigest()

    def close(self):
        for worker in self._workers:
            worker.shutdown(wait=True, cancel_futures=True)
