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

from concurrent import futures
import hashlib

from glance_store import exceptions

from cinder_ext_store import hashing
from cinder_ext_store.tests.unit import base


class Verifier(object):
    def __init__(self):
        self.data = b''

    def update(self, data):
        self.data += data


class TestImageHashes(base.TestCase):

    def test_digests_in_order(self):
        verifier = Verifier()
        hashes = hashing.ImageHashes('sha512', verifier)
        self.addCleanup(hashes.close)
        jobs = []
        for i in range(100):
            jobs.extend(hashes.submit(b'%d' % i * 5000))
        futures.wait(jobs)
        data = b''.join(b'%d' % i * 5000 for i in range(100))
        self.assertEqual((hashlib.md5(data).hexdigest(),
                          hashlib.sha512(data).hexdigest()),
                         hashes.hexdigests())
        self.assertEqual(data, verifier.data)

    def test_unknown_algorithm(self):
        self.assertRaises(exceptions.UnknownHashingAlgo,
                          hashing.ImageHashes, 'sha-none')

    def test_threads_end_on_close(self):
        hashes = hashing.ImageHashes('sha256')
        futures.wait(hashes.submit(b'x'))
        hashes.close()
        self.assertRaises(RuntimeError, hashes.submit, b'y')
