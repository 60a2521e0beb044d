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

import fixtures
from glance_store import exceptions
import testtools

from cinder_ext_store import attachment
from cinder_ext_store import host as host_mod
from cinder_ext_store.tests.unit import base


class TestConnectionProperties(testtools.TestCase):

    def test_flat(self):
        info = {'driver_volume_type': 'local', 'device_path': '/dev/loop3'}
        self.assertIs(info, attachment.connection_properties(info))

    def test_nested(self):
        info = {'driver_volume_type': 'rbd',
                'data': {'name': 'volumes/volume-1', 'hosts': ['h']}}
        self.assertEqual({'driver_volume_type': 'rbd',
                          'name': 'volumes/volume-1', 'hosts': ['h']},
                         attachment.connection_properties(info))


class TestLifecycle(base.StoreTestCase):

    def test_context_manager_success_and_failure(self):
        api = self.store.cinder.api()
        vol = api.create(1, 'v', {})
        with attachment.attach(api, self.host, vol.id, 'rw') as att:
            att.device.write_at(0, b'abc')
            self.assertEqual('in-use', api.get(vol.id).status)
        self.assertEqual('available', api.get(vol.id).status)
        self.assertEqual(b'abc', self.cloud.data(vol.id, 3))

        def fail():
            with attachment.attach(api, self.host, vol.id, 'ro'):
                raise ValueError('inside')
        self.assertRaises(ValueError, fail)
        self.assertEqual({}, self.cloud.attachments)
        self.assertEqual({}, self.host.connected)

    def test_forced_disconnect_retry_also_fails(self):
        api = self.store.cinder.api()
        vol = api.create(1, 'v', {})
        real = self.host.connector

        def connector(info):
            conn = real(info)

            def disconnect(props, device_info, force=False):
                raise OSError('stuck (force=%s)' % force)
            conn.disconnect_volume = disconnect
            return conn

        self.host.connector = connector
        att = attachment.Attachment(api, self.host, vol.id, 'rw')
        att.open()
        e = self.assertRaises(exceptions.BackendException, att.close, True)
        self.assertIn('stuck (force=False)', str(e))
        self.assertIn('Forced disconnect of volume %s failed too' % vol.id,
                      self.log.output)
        # The attachment is deleted even so.
        self.assertEqual({}, self.cloud.attachments)


class FakeBrick(object):
    """os-brick's connector module, counting property lookups."""

    class InitiatorConnector(object):
        made = []

        @classmethod
        def factory(cls, protocol, root_helper, **kwargs):
            cls.made.append((protocol, root_helper, kwargs))
            return 'connector-for-%s' % protocol

    def __init__(self):
        self.lookups = 0

    def get_connector_properties(self, root_helper, ip, multipath,
                                 enforce_multipath, host=None):
        self.lookups += 1
        return {'host': host, 'ip': ip, 'multipath': multipath}


class TestBrickHost(base.StoreTestCase):

    def setUp(self):
        super(TestBrickHost, self).setUp()
        self.brick = FakeBrick()
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.host.brick_connector', self.brick))
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.host.BrickHost._privsep_ready', True))
        self.host = host_mod.BrickHost(self.store.store_conf, self.conf)

    def test_properties_are_computed_once(self):
        first = self.host.connector_properties()
        first['mutated'] = True
        second = self.host.connector_properties()
        self.assertEqual(1, self.brick.lookups)
        self.assertNotIn('mutated', second)
        self.assertFalse(second['multipath'])

    def test_connector(self):
        conn = self.host.connector({'driver_volume_type': 'local'})
        self.assertEqual('connector-for-local', conn)

    def test_root_helper(self):
        self.useFixture(fixtures.MonkeyPatch('os.geteuid', lambda: 1000))
        self.assertEqual('sudo glance-rootwrap /etc/glance/rootwrap.conf',
                         self.host.root_helper)
        self.assertEqual(['sudo', 'glance-rootwrap',
                          '/etc/glance/rootwrap.conf'],
                         self.host._privsep_prefix())
        self.useFixture(fixtures.MonkeyPatch('os.geteuid', lambda: 0))
        self.assertIsNone(self.host.root_helper)
        prefix = self.host._privsep_prefix()
        self.assertEqual('env', prefix[0])
        self.assertTrue(prefix[1].startswith('PATH=/'))

    def test_host_ip(self):
        self.assertTrue(host_mod._host_ip('localhost'))
        self.assertEqual('127.0.0.1', host_mod._host_ip('no-such-host.'))

    def test_missing_modules(self):
        self.assertEqual([], host_mod.missing_modules())
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.host.priv_context', None))
        self.assertEqual(['oslo.privsep'], host_mod.missing_modules())
