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

"""Spare volumes against the real Cinder: taken by a small upload, made
again by the process's thread, deleted by reconcile after a crash."""

import json
import os
import subprocess
import sys

from cinder_ext_store import reconcile
from cinder_ext_store import spare_volumes
from cinder_ext_store.tests.functional import base
from harness import images

#: A process that makes the spare backend's spares, then dies without
#: releasing them (``os._exit`` runs no exit handler).
_DIE_HOLDING_SPARES = '''
import os
from cinder_ext_store.tests.functional import base
from harness import stores
cloud = base.cloud()
stores.load(cloud, base.backends(cloud), 'online')
spares = stores.get('spare').spares
assert spares.fill()
print(spares._ready[0].volume.id, flush=True)
os._exit(0)
'''


class NoGlance(object):
    """A Glance reconcile cannot ask: no image volume is judged."""

    reachable = False
    reason = 'not asked by this test'


class TestSpareVolumes(base.FunctionalTestCase):

    backend = 'spare'

    def setUp(self):
        super(TestSpareVolumes, self).setUp()
        if self.store(self.backend).spares.count != 1:
            self.fail('the spare backend makes no spares: the cloud has no '
                      'service credentials (the noauth stack)')

    def test_small_upload_takes_a_spare(self):
        spares = self.store(self.backend).spares
        self.addCleanup(spares.stop)
        size = 3 * base.MiB + 7
        # The process's first take starts its thread: this upload makes
        # its own volume.
        first = self.add(self.backend, images.ImageSource(size, seed=61),
                         size, image_id='spare-first')[0]
        self.assertIn('create', self.stats.last('add').phases)
        self.wait_for('no spare was made', lambda: spares.ready == 1)
        spare_id = spares._ready[0].volume.id
        vol = self.inspect.volumes()[spare_id]
        self.assertEqual(spare_volumes.NAME, vol.name)
        self.assertEqual('in-use', vol.status)

        src = images.ImageSource(size, seed=62)
        uri, written = self.add(self.backend, src, size,
                                image_id='spare-second')[:2]
        self.assertEqual(spare_id, uri.rsplit('/', 1)[1])
        self.assertEqual(size, written)
        phases = self.stats.last('add').phases
        self.assertIn('claim', phases)
        self.assertNotIn('create', phases)
        self.assertNotIn('attach', phases)
        vol = self.inspect.volumes()[spare_id]
        self.assertEqual('image-spare-second', vol.name)
        self.assertEqual('available', vol.status)
        self.assertEqual('spare-second', vol.metadata['glance_image_id'])
        self.assertEqual(str(size), vol.metadata['image_size'])
        self.assertEqual(src.hexdigest(), self.read_sha256(uri, self.backend))
        self.delete(uri, self.backend)
        self.delete(first, self.backend)
        # The next one is made; stopping releases it.
        self.wait_for('no spare was made again', lambda: spares.ready == 1)
        next_id = spares._ready[0].volume.id
        spares.stop()
        recorded = {v for v, _ in self.store(self.backend).uploads.markers()}
        self.assertEqual(set(), recorded & {spare_id, next_id})
        self.assertNoLeftovers()

    def test_spare_of_a_killed_process_is_reconciled(self):
        done = subprocess.run([sys.executable, '-c', _DIE_HOLDING_SPARES],
                              capture_output=True, text=True, timeout=300)
        self.assertEqual(0, done.returncode, done.stderr)
        spare_id = done.stdout.split()[-1]
        store = self.store(self.backend)
        marker = os.path.join(store.uploads.records.dir,
                              spare_id + '.upload')
        with open(marker) as f:
            self.assertTrue(json.load(f)['spare'])
        self.assertEqual('in-use', self.inspect.volumes()[spare_id].status)

        actions = [a for a in reconcile.plan(store, NoGlance(), 3600)
                   if spare_id in a.target]
        self.assertEqual(['release upload attachment', 'delete spare volume'],
                         [a.what for a in actions])
        self.assertIn('is gone', actions[1].reason)
        out = []
        self.assertEqual(0, reconcile.run(actions, True, out.append))
        self.assertFalse(os.path.exists(marker))
        self.assertNoLeftovers()
