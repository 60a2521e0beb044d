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

"""The store loads through glance_store's own machinery, next to in-tree."""

from importlib import metadata

import fixtures
from glance_store._drivers.cinder import store as intree
from glance_store import backend
from glance_store import location
from glance_store import multi_backend
from oslo_config import cfg
from oslo_config import fixture as config_fixture
import testtools

from cinder_ext_store import store as store_mod

VOLUME = '6f1e3a52-8d7b-4b8e-9d4e-2a6c1f0b9a11'


class LoadingTestCase(testtools.TestCase):

    def setUp(self):
        super(LoadingTestCase, self).setUp()
        # glance_store keeps its scheme maps in module globals.
        for name in ('SCHEME_TO_CLS_MAP', 'SCHEME_TO_CLS_BACKEND_MAP'):
            self.useFixture(fixtures.MonkeyPatch(
                'glance_store.location.%s' % name, {}))


class TestEntryPoints(testtools.TestCase):

    def test_registered_names(self):
        ours = [ep for ep in metadata.entry_points(
            group='glance_store.drivers') if ep.value.startswith(
                'cinder_ext_store')]
        # Never 'cinder': two drivers of one name disable each other.
        self.assertEqual(['cinder_ext'], [ep.name for ep in ours])
        opts = [ep for ep in metadata.entry_points(group='oslo.config.opts')
                if ep.name == 'cinder_ext_store']
        self.assertEqual(1, len(opts))

    def test_shared_options_are_the_intree_objects(self):
        theirs = {o.name: o for o in intree.Store.OPTIONS}
        for opt in store_mod.Store.OPTIONS:
            if opt.name in theirs:
                self.assertIs(theirs[opt.name], opt)
            else:
                self.assertTrue(opt.name.startswith('cinder_ext_'), opt.name)


class TestMultiStore(LoadingTestCase):

    def setUp(self):
        super(TestMultiStore, self).setUp()
        self.conf = cfg.CONF
        try:
            self.conf.register_opt(cfg.DictOpt('enabled_backends'))
        except cfg.DuplicateOptError:
            pass
        self.useFixture(config_fixture.Config(self.conf))
        self.conf.set_override('enabled_backends', {
            'fast': 'cinder_ext', 'slow': 'cinder_ext', 'legacy': 'cinder'})
        multi_backend.register_store_opts(self.conf)
        self.conf.set_override('default_backend', 'fast',
                               group='glance_store')
        for group, user in (('fast', 'alice'), ('slow', 'bob')):
            for name, value in (('auth_address', 'http://ks/v3'),
                                ('user_name', user),
                                ('password', 'secret'),
                                ('project_name', 'service')):
                self.conf.set_override('cinder_store_' + name, value,
                                       group=group)
        self.conf.set_override('cinder_do_extend_attached', True,
                               group='fast')

    def test_create_and_verify(self):
        # Two schemes each for ours, one for the in-tree store.
        self.assertEqual(5, multi_backend.create_multi_stores(self.conf))
        multi_backend.verify_store()
        fast = multi_backend.get_store_from_store_identifier('fast')
        slow = multi_backend.get_store_from_store_identifier('slow')
        legacy = multi_backend.get_store_from_store_identifier('legacy')
        self.assertIsInstance(fast, store_mod.Store)
        self.assertIsInstance(legacy, intree.Store)
        self.assertNotIsInstance(legacy, store_mod.Store)
        self.assertEqual('cinder://fast', fast.url_prefix)
        self.assertTrue(fast.online_extend.enabled)
        self.assertFalse(slow.online_extend.enabled)
        self.assertTrue(fast.is_capable(
            store_mod.capabilities.BitMasks.WRITE_ACCESS))

    def test_each_store_has_its_own_session(self):
        multi_backend.create_multi_stores(self.conf)
        fast = multi_backend.get_store_from_store_identifier('fast')
        slow = multi_backend.get_store_from_store_identifier('slow')
        self.assertIsNot(fast.cinder.session, slow.cinder.session)
        for store, user in ((fast, 'alice'), (slow, 'bob')):
            method = store.cinder.session.auth.auth_methods[0]
            self.assertEqual(user, method.username)

    def test_locations(self):
        multi_backend.create_multi_stores(self.conf)
        loc = location.get_location_from_uri_and_backend(
            'cinder://fast/%s' % VOLUME, 'fast', conf=self.conf)
        self.assertIsInstance(loc.store_location, store_mod.StoreLocation)
        self.assertEqual(VOLUME, loc.store_location.volume_id)
        self.assertEqual('cinder://fast/%s' % VOLUME, loc.get_store_uri())
        loc = location.get_location_from_uri_and_backend(
            'cinder://legacy/%s' % VOLUME, 'legacy', conf=self.conf)
        self.assertIsInstance(loc.store_location, intree.StoreLocation)

    def test_incomplete_credentials_disable_writes(self):
        self.conf.clear_override('cinder_store_password', group='slow')
        multi_backend.create_multi_stores(self.conf)
        slow = multi_backend.get_store_from_store_identifier('slow')
        self.assertFalse(slow.is_capable(
            store_mod.capabilities.BitMasks.WRITE_ACCESS))
        self.assertRaises(store_mod.exceptions.BadStoreConfiguration,
                          slow.configure_add)


class TestSingleStore(LoadingTestCase):

    def test_legacy_mode(self):
        conf = cfg.ConfigOpts()
        conf([], project='glance')
        # Registers every installed driver's options into [glance_store]:
        # ours and the in-tree driver's must not clash.
        backend.register_opts(conf)
        conf.set_override('stores', ['cinder_ext'], group='glance_store')
        conf.set_override('default_store', 'cinder', group='glance_store')
        self.assertEqual(1, backend.create_stores(conf))
        store = backend.get_store_from_scheme('cinder')
        self.assertIsInstance(store, store_mod.Store)
        self.assertEqual('cinder://', store.url_prefix)
        loc = location.get_location_from_uri('cinder://%s' % VOLUME,
                                             conf=conf)
        self.assertEqual(VOLUME, loc.store_location.volume_id)
        self.assertEqual('cinder://%s' % VOLUME, loc.get_store_uri())
