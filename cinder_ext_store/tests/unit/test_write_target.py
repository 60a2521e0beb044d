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

import hashlib
import io

from cinderclient import exceptions as cinder_exc
import ddt
from glance_store import exceptions

from cinder_ext_store.tests.unit import base

# 10.5 "GiB" of data: the volume grows 1 -> 2 -> 3 -> 5 -> 8 -> 12.
SIZE = 10 * base.TEST_GIB + base.TEST_GIB // 2
STEPS = 5


def extend_calls(cloud):
    return [c for c in cloud.calls if c[0] == 'extend']


class GrowthTestCase(base.StoreTestCase):

    def upload(self, size=SIZE, seed=1):
        data = base.payload(size, seed)
        seen = []
        self.store.add_observer(seen.append)
        extends = self.cloud.extends_accepted
        attachments = self.cloud.count('attachment_create')
        uri, written, md5, multihash, _ = self.add(data, size=0)
        # The store's account matches what Cinder saw.
        self.assertEqual((len(data), self.cloud.extends_accepted - extends,
                          self.cloud.count('attachment_create') -
                          attachments),
                         (seen[0].bytes, seen[0].extends,
                          seen[0].attachments))
        self.assertEqual(len(data), written)
        self.assertEqual(hashlib.sha512(data).hexdigest(), multihash)
        self.assertEqual(hashlib.md5(data).hexdigest(), md5)
        self.assertStored(uri, data)
        self.write_attachments = self.cloud.count('attachment_create')
        self.assertEqual(data, self.read_all(uri))
        return self.cloud.volumes[self.volume_id(uri)]


class TestOnline(GrowthTestCase):
    extend_attached = True

    def test_grows_attached_in_steps(self):
        vol = self.upload()
        self.assertEqual(12, vol['size'])
        calls = extend_calls(self.cloud)
        self.assertEqual([2, 3, 5, 8, 12], [c[3] for c in calls])
        self.assertEqual({'3.42'}, {c[1].get_string() for c in calls})
        self.assertEqual(1, self.write_attachments)
        self.assertEqual(STEPS, self.host.calls.count('extend_volume'))
        self.assertIsNone(self.store.online_extend.refused)

    def test_through_file_like_handle(self):
        self.host.handles = True
        self.upload(3 * base.TEST_GIB + 1)
        self.assertEqual(1, self.write_attachments)

    def test_size_none_means_unknown(self):
        data = base.payload(2 * base.TEST_GIB + 5)
        uri, written = self.store.add('img', io.BytesIO(data), None,
                                      'sha512', context=self.context)[:2]
        self.assertEqual(len(data), written)
        self.assertStored(uri, data)
        self.assertEqual(2, len(extend_calls(self.cloud)))

    def test_known_size_never_extends(self):
        data = base.payload(SIZE)
        uri = self.add(data)[0]
        self.assertStored(uri, data)
        self.assertEqual([], extend_calls(self.cloud))

    def test_quota_on_extend_is_storage_full(self):
        self.cloud.quota_gib = 3
        self.assertRaises(exceptions.StorageFull, self.add,
                          base.payload(SIZE), size=0)
        self.assertNothingLeft()
        # Capacity is not a reason to give up online extend.
        self.assertIsNone(self.store.online_extend.refused)

    def test_extend_timeout_is_backend_error(self):
        self.store.cinder.timeout = 0.2
        real = self.cloud.extend

        def stuck_extend(*args):
            real(*args)
            for vol in self.cloud.volumes.values():
                if vol.get('pending'):
                    vol['pending']['polls'] = 10 ** 6

        self.cloud.extend = stuck_extend
        e = self.assertRaises(exceptions.BackendException, self.add,
                              base.payload(SIZE), size=0)
        self.assertNotIsInstance(e, exceptions.StorageFull)
        self.assertIn('in-use extension to 2 GiB', str(e))
        self.assertIn("'extending'", str(e))
        # Cinder refuses to delete an 'extending' volume: force-deleted.
        self.assertNothingLeft()


class FallbackTestCase(GrowthTestCase):
    extend_attached = True

    def assertFellBack(self, reason):
        self.assertIsNotNone(self.store.online_extend.refused)
        self.assertIn(reason, self.store.online_extend.refused)
        self.assertEqual(1, self.log.output.count('grow volumes by '
                                                  'detaching them'))

    def offline_extends(self):
        return [c for c in extend_calls(self.cloud)
                if c[1].get_string() == '3.0']


@ddt.ddt
class TestFallback(FallbackTestCase):

    @ddt.data((cinder_exc.Forbidden(403, 'policy denied'), 'HTTP 403'),
              (cinder_exc.BadRequest(400, 'need 3.42'), 'HTTP 400'))
    @ddt.unpack
    def test_refused_by_api(self, exc, reason):
        self.cloud.fail('extend', exc)
        vol = self.upload()
        self.assertFellBack(reason)
        self.assertEqual(12, vol['size'])
        self.assertEqual(STEPS, len(self.offline_extends()))

    def test_policy_denial(self):
        self.cloud.policy_denies_extend_attached = True
        self.upload()
        self.assertFellBack('HTTP 403')

    def test_connector_cannot_rescan(self):
        self.host.can_extend = False
        vol = self.upload()
        self.assertFellBack('cannot rescan')
        self.assertEqual(12, vol['size'])
        # Cinder had already grown the volume: the first offline step only
        # re-attaches, the later ones extend.
        self.assertEqual(STEPS - 1, len(self.offline_extends()))

    def test_scheduler_rejection(self):
        self.cloud.online_extend = False
        self.upload()
        self.assertFellBack('does not support online extend')

    def test_error_extending(self):
        self.cloud.extend_fails_in_driver = True

        real = self.cloud.extend

        def fail_in_use_only(version, volume_id, new_size):
            vol = self.cloud.volumes[volume_id]
            self.cloud.extend_fails_in_driver = vol['status'] == 'in-use'
            real(version, volume_id, new_size)

        self.cloud.extend = fail_in_use_only
        self.upload()
        self.assertFellBack('error_extending')

    def test_device_not_grown(self):
        # Cinder grows the volume but this host keeps the old size until it
        # re-attaches (a rescan that silently does nothing).
        self.cloud.host_sees_growth = False
        vol = self.upload()
        self.assertFellBack('still sees')
        self.assertEqual(12, vol['size'])

    def test_fallback_is_remembered(self):
        self.cloud.policy_denies_extend_attached = True
        self.upload()
        self.assertEqual(1, len([c for c in extend_calls(self.cloud)
                                 if c[1].get_string() == '3.42']))
        del self.cloud.calls[:]
        self.upload(seed=2)
        self.assertEqual([], [c for c in extend_calls(self.cloud)
                              if c[1].get_string() == '3.42'])
        # Reconfiguring the store forgets it.
        self.store.configure()
        self.assertIsNone(self.store.online_extend.refused)

    def test_full_pool_is_not_a_missing_feature(self):
        # The scheduler refuses the in-use extend (no room), the offline
        # one too: StorageFull, and online extend stays on.
        self.cloud.pool_gib = 2
        e = self.assertRaises(exceptions.StorageFull, self.add,
                              base.payload(3 * base.TEST_GIB), size=0)
        self.assertIn('no room in the pool', str(e))
        self.assertIsNone(self.store.online_extend.refused)
        self.assertTrue(self.store.online_extend.usable)
        self.assertNothingLeft()
        self.cloud.pool_gib = None
        del self.cloud.calls[:]
        self.upload(3 * base.TEST_GIB)
        self.assertEqual(2, len([c for c in extend_calls(self.cloud)
                                 if c[1].get_string() == '3.42']))

    def test_refusal_expires(self):
        clock = [0.0]
        self.store.online_extend._clock = lambda: clock[0]
        self.cloud.policy_denies_extend_attached = True
        self.upload()
        self.assertFellBack('HTTP 403')
        self.cloud.policy_denies_extend_attached = False
        clock[0] += self.store.tuning.refusal_ttl - 1
        self.assertFalse(self.store.online_extend.usable)
        clock[0] += 1
        del self.cloud.calls[:]
        self.upload(seed=2)
        self.assertEqual(STEPS, len([c for c in extend_calls(self.cloud)
                                     if c[1].get_string() == '3.42']))
        self.assertIn('Trying to extend attached volumes again',
                      self.log.output)

    def test_rescan_failure_is_an_error(self):
        self.host.fail('extend_volume', OSError('rescan exploded'))
        e = self.assertRaises(exceptions.BackendException, self.add,
                              base.payload(SIZE), size=0)
        self.assertIn('rescanning it on this host failed: rescan exploded',
                      str(e))
        self.assertIsNone(self.store.online_extend.refused)
        self.assertNothingLeft()

    def test_failure_after_fallback_cleans_up(self):
        self.cloud.policy_denies_extend_attached = True
        self.cloud.quota_gib = 4
        self.assertRaises(exceptions.StorageFull, self.add,
                          base.payload(SIZE), size=0)
        self.assertNothingLeft()


class TestOffline(FallbackTestCase):
    extend_attached = False

    def test_detach_extend_reattach_keeps_bytes(self):
        vol = self.upload()
        self.assertEqual(12, vol['size'])
        self.assertEqual(STEPS, len(self.offline_extends()))
        self.assertEqual(STEPS + 1, self.write_attachments)
        self.assertNotIn('extend_volume', self.host.calls)
        self.assertNotIn('grow volumes by detaching', self.log.output)

    def test_reattach_sees_smaller_device(self):
        # Cinder says 2 "GiB", the re-attached device is still 1.
        real = self.cloud._grow_file
        self.cloud._grow_file = lambda vid, size: real(vid, 1)
        e = self.assertRaises(exceptions.BackendException, self.add,
                              base.payload(2 * base.TEST_GIB), size=0)
        self.assertIn('after re-attaching', str(e))
        self.cloud._grow_file = real
        self.assertNothingLeft()

    def test_full_pool_is_storage_full(self):
        self.cloud.pool_gib = 2
        e = self.assertRaises(exceptions.StorageFull, self.add,
                              base.payload(3 * base.TEST_GIB), size=0)
        self.assertIn('no room in the pool', str(e))
        self.assertNothingLeft()
