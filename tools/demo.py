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
what happened, including the store's own account (its stats, from
glance-api's log).
Usage: demo.py [--size-mib N] [--keep]
"""

import argparse
import os
import sys
import time

from harness import clouds
from harness import glance
from harness import images

MiB = images.MiB


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-mib', type=int, default=1536)
    parser.add_argument('--keep', action='store_true',
                        help='keep the images afterwards')
    args = parser.parse_args()
    store_cloud = clouds.load()
    user = glance.GlanceUser(store_cloud.user())
    size = args.size_mib * MiB + 12345
    failures = 0
    print('\ncinder_ext demo: two %d-byte images through Glance at %s\n'
          % (size, user.url))
    for label, declared in (('known size', size), ('unknown size', None)):
        image = user.create('demo-%s' % label.replace(' ', '-'))
        src = images.ImageSource(size, seed=len(label),
                                 digests=('sha256', 'md5', 'sha512'))
        t0 = time.monotonic()
        # A file-like without a length goes out chunked; with image_size
        # Glance passes the size to the store.
        user.client.images.upload(image.id, images.Unsized(src),
                                  image_size=declared)
        t_up = time.monotonic() - t0
        image = user.client.images.get(image.id)
        t0 = time.monotonic()
        status, sha256, _n = user.download(image.id)
        t_down = time.monotonic() - t0
        ok = (status == 200 and image.status == 'active' and
              image.size == size and sha256 == src.hexdigest() and
              image.checksum == src.hexdigest('md5') and
              image.os_hash_value == src.hexdigest('sha512'))
        failures += not ok
        print('%-13s image %s, store %s, %s' % (label + ':', image.id,
                                                image.stores, image.status))
        print('    upload   %7.1f MiB/s  (%.1fs)' % (size / MiB / t_up, t_up))
        print('    download %7.1f MiB/s  (%.1fs)'
              % (size / MiB / t_down, t_down))
        for report in glance.store_reports(store_cloud, image.id) or ():
            print('    store %s: %d bytes in %.2fs, %d extend(s) (%s), %d '
                  'attachment(s); phases %s' % (
                      report.operation, report.bytes, report.seconds,
                      report.extends, ', '.join(report.growth) or 'none',
                      report.attachments, ', '.join(
                          '%s %.2fs' % kv
                          for kv in sorted(report.phases.items()))))
        print('    verify   bytes, checksum, os_hash_value: %s'
              % ('OK' if ok else 'MISMATCH'))
        if not args.keep:
            user.client.images.delete(image.id)
    print('\nThe stack keeps running (tools/stack status | down).')
    stack_dir = store_cloud.facts.stack_dir
    if stack_dir:
        print('Use it:  source %s/openrc; %s/bin/openstack image list'
              % (stack_dir, os.path.join(stack_dir, 'venv-glance')))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
