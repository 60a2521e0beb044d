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

from glance_store import exceptions

from cinder_ext_store import attachments
from cinder_ext_store.tests.unit import base


class TestConnectionProperties(base.TestCase):

    def test_flat(self):
        info = {'driver_volume_type': 'local', 'device_path': '/dev/loop3'}
        self.assertIs(info, attachments.connection_properties(info))

    def test_nested(self):
        info = {'driver_volume_type': 'rbd',
                'data': {'name': 'volumes/volume-1', 'hosts': ['h']}}
        self.assertEqual({'driver_volume_type': 'rbd',
                          'name': 'volumes/volume-1', 'hosts': ['h']},
                         attachments.connection_properties(info))


class TestLifecycle(base.StoreTestCase):

    def test_context_manager_success_and_failure(self):
        api = self.store.cinder.api()
        vol = api.create(1, 'v', {})
        with attachments.Attachment(api, self.host, vol.id, 'rw') as att:
            att.device.write_at(0, b'abc')
            self.assertEqual('in-use', api.get(vol.id).status)
        self.assertEqual('available', api.get(vol.id).status)
        self.assertEqual(b'abc', self.cloud.data(vol.id, 3))

        def fail():
            with attachments.Attachment(api, self.host, vol.id, 'ro'):
                raise ValueError('inside')
        self.assertRaises(ValueError, fail)
        self.assertEqual({}, self.cloud.attachments)
        self.assertEqual({}, self.host.connected)
        # Lent for each attachment, given back on each detach; the lend
        # insists on the volume's size.
        self.assertEqual(2, self.host.calls.count('lend'))
        self.assertEqual([], self.host.lent)
        self.assertEqual([base.TEST_GIB] * 2, self.host.lent_sizes)

    def test_refused_lending_undoes_the_attachment(self):
        api = self.store.cinder.api()
        vol = api.create(1, 'v', {})
        self.host.fail('lend', exceptions.BackendException('refused'))
        att = attachments.Attachment(api, self.host, vol.id, 'rw')
        self.assertRaises(exceptions.BackendException, att.open)
        self.assertEqual({}, self.cloud.attachments)
        self.assertEqual({}, self.host.connected)
        self.assertEqual('available', api.get(vol.id).status)

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
        att = attachments.Attachment(api, self.host, vol.id, 'rw')
        att.open()
        e = self.assertRaises(exceptions.BackendException, att.close)
        self.assertIn('stuck (force=False)', str(e))
        self.assertIn('Forced disconnect of volume %s failed too' % vol.id,
                      self.log.output)
        # The attachment is deleted even so.
        self.assertEqual({}, self.cloud.attachments)

    def test_open_undoes_its_steps_when_one_fails(self):
        api = self.store.cinder.api()
        vol = api.create(1, 'v', {})
        for call in ('attachment_create', 'attachment_complete'):
            self.cloud.fail(call, RuntimeError('cinder broke'))
            att = attachments.Attachment(api, self.host, vol.id, 'rw')
            self.assertRaises(RuntimeError, att.open)
            self.assertEqual({}, self.cloud.attachments, call)
            self.assertEqual({}, self.host.connected, call)
            self.assertIsNone(att.device)
        self.host.fail('connect', OSError('no path'))
        att = attachments.Attachment(api, self.host, vol.id, 'rw')
        e = self.assertRaises(exceptions.BackendException, att.open)
        self.assertIn('Connecting volume %s' % vol.id, str(e))
        self.assertEqual({}, self.cloud.attachments)
        self.assertEqual('available', api.get(vol.id).status)
