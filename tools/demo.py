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

"""The main job: images through the Glance API into cinder_ext, and back.

As the stack's demo user, uploads one image with its size and one chunked
without a size (so the store grows the volume while attached), downloads
and verifies both (bytes, Glance's checksum and os_hash_value), and prints
what happened, including the store's own account from glance-api's log.
Usage: demo.py [--size-mib N] [--keep]
"""

import argparse
import hashlib
import os
import random
import sys
import time

from glanceclient import client as glance_client

from cinder_ext_store.tests.functional import stackenv

MiB = 1024 * 1024


class Source(object):
    """Incompressible data, cheap to make: slices of a random pattern."""

    def __init__(self, size, seed):
        self.left = size
        self.rand = random.Random(seed)
        self.pattern = self.rand.randbytes(16 * MiB)
        self.digests = [hashlib.sha256(), hashlib.md5(), hashlib.sha512()]

    def read(self, n=-1):
        n = min(n if n and n > 0 else MiB, self.left, 8 * MiB)
        start = self.rand.randrange(len(self.pattern) - n + 1)
        chunk = self.pattern[start:start + n]
        self.left -= n
        for digest in self.digests:
            digest.update(chunk)
        return chunk


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-mib', type=int, default=1536)
    parser.add_argument('--keep', action='store_true',
                        help='keep the images afterwards')
    args = parser.parse_args()
    env = stackenv.read_env()
    sess = stackenv.demo_session(env)
    glance = glance_client.Client('2', session=sess,
                                  endpoint=env['CINDER_EXT_GLANCE_URL'])
    size = args.size_mib * MiB + 12345
    failures = 0
    print('\ncinder_ext demo: two %d-byte images through Glance at %s\n'
          % (size, env['CINDER_EXT_GLANCE_URL']))
    for label, declared in (('known size', size), ('unknown size', None)):
        image = glance.images.create(name='demo-%s' % label.replace(' ', '-'),
                                     disk_format='raw',
                                     container_format='bare')
        src = Source(size, seed=len(label))
        t0 = time.monotonic()
        # A file-like without a length goes out chunked; with image_size
        # Glance passes the size to the store.
        glance.images.upload(image.id, src, image_size=declared)
        t_up = time.monotonic() - t0
        image = glance.images.get(image.id)
        t0 = time.monotonic()
        down = hashlib.sha256()
        for chunk in glance.images.data(image.id):
            down.update(chunk)
        t_down = time.monotonic() - t0
        sha256, md5, sha512 = (d.hexdigest() for d in src.digests)
        ok = (image.status == 'active' and image.size == size and
              down.hexdigest() == sha256 and image.checksum == md5 and
              image.os_hash_value == sha512)
        failures += not ok
        print('%-13s image %s, store %s, %s' % (label + ':', image.id,
                                                image.stores, image.status))
        print('    upload   %7.1f MiB/s  (%.1fs)' % (size / MiB / t_up, t_up))
        print('    download %7.1f MiB/s  (%.1fs)'
              % (size / MiB / t_down, t_down))
        for line in stackenv.store_report(env, image.id):
            print('    store:   %s' % line)
        print('    verify   bytes, checksum, os_hash_value: %s'
              % ('OK' if ok else 'MISMATCH'))
        if not args.keep:
            glance.images.delete(image.id)
    print('\nThe stack keeps running (tools/localstack.sh status | down).')
    print('Use it:  source %s/openrc; %s/bin/openstack image list'
          % (stackenv.STACK_DIR,
             os.path.join(stackenv.STACK_DIR, 'venv-glance')))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
