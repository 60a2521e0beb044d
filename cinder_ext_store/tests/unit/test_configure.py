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

import ddt
import fixtures
from glance_store import capabilities
from glance_store import exceptions

from cinder_ext_store import store as store_mod
from cinder_ext_store.tests.unit import base
from cinder_ext_store.tests.unit import fakes

VOLUME = '6f1e3a52-8d7b-4b8e-9d4e-2a6c1f0b9a11'
CREDS = dict(cinder_store_auth_address='http://ks/v3',
             cinder_store_user_name='glance',
             cinder_store_password='secret',
             cinder_store_project_name='service')


@ddt.ddt
class TestLocation(base.StoreTestCase):

    @ddt.data('cinder://%s' % VOLUME, 'cinder://images/%s' % VOLUME)
    def test_valid(self, uri):
        loc = self.location(uri)
        self.assertEqual(VOLUME, loc.store_location.volume_id)
        self.assertEqual('cinder://images/%s' % VOLUME, loc.get_store_uri())

    @ddt.data('cinder://', 'cinder://not-a-uuid', 'cinder:///%s' % VOLUME,
              'cinder://a/b/%s' % VOLUME, 'rbd://%s' % VOLUME,
              'cinder://images/%s/' % VOLUME)
    def test_malformed(self, uri):
        self.assertRaises(exceptions.BadStoreUri, self.location, uri)

    def test_from_specs(self):
        loc_cls = self.store.get_store_location_class()
        loc = loc_cls({'volume_id': VOLUME}, self.conf)
        self.assertEqual('cinder://%s' % VOLUME, loc.get_uri())

    def test_schemes(self):
        self.assertEqual(('cinder_ext', 'cinder'), self.store.get_schemes())


class TestConfigureAdd(base.StoreTestCase):

    def configured(self, **overrides):
        store = store_mod.Store(self.make_conf(**overrides),
                                backend=base.BACKEND)
        store.cinder = fakes.FakeSession(self.cloud, 1)
        return store

    def test_missing_libraries(self):
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.cinder_client.cinder_v3', None))
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.host.os_brick', None))
        store = self.configured()
        e = self.assertRaises(exceptions.BadStoreConfiguration,
                              store.configure, re_raise_bsc=True)
        self.assertIn('python-cinderclient, os-brick not installed', str(e))
        self.assertFalse(store.is_capable(
            capabilities.BitMasks.WRITE_ACCESS))

    def test_incomplete_credentials(self):
        store = self.configured(cinder_store_user_name='glance')
        e = self.assertRaises(exceptions.BadStoreConfiguration,
                              store.configure_add)
        self.assertIn('service credentials are incomplete', str(e))

    def test_unknown_volume_type_warns(self):
        self.configured(cinder_volume_type='nope', **CREDS).configure_add()
        self.assertIn('cinder_volume_type nope does not exist',
                      self.log.output)

    def test_known_volume_type(self):
        self.configured(cinder_volume_type='fast', **CREDS).configure_add()
        self.assertNotIn('does not exist', self.log.output)
        self.assertEqual(1, self.cloud.count('volume_type_find'))

    def test_volume_type_check_failure_does_not_crash(self):
        self.cloud.fail('volume_type_find', ConnectionError('down'))
        self.configured(cinder_volume_type='fast', **CREDS).configure_add()
        self.assertIn('could not check volume type fast', self.log.output)

    def test_no_credentials_skips_check(self):
        self.configured(cinder_volume_type='fast').configure_add()
        self.assertEqual(0, self.cloud.count('volume_type_find'))
        self.assertIn('cannot check volume type', self.log.output)
