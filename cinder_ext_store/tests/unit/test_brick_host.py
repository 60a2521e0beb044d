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

import shutil
from unittest import mock

import fixtures
from glance_store import exceptions
from oslo_privsep import priv_context

from cinder_ext_store import brick_host
from cinder_ext_store.tests.unit import base


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
            'cinder_ext_store.brick_host.brick_connector', self.brick))
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.brick_host.BrickHost._privsep_ready', True))
        self.host = brick_host.BrickHost(self.store.store_conf, self.conf)

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
        self.host.euid = lambda: 1000
        self.assertEqual('sudo glance-rootwrap /etc/glance/rootwrap.conf',
                         self.host.root_helper)
        self.assertEqual(['sudo', 'glance-rootwrap',
                          '/etc/glance/rootwrap.conf'],
                         self.host._privsep_prefix())
        self.host.euid = lambda: 0
        self.assertIsNone(self.host.root_helper)
        prefix = self.host._privsep_prefix()
        self.assertEqual('env', prefix[0])
        self.assertTrue(prefix[1].startswith('PATH=/'))

    def test_host_ip(self):
        self.assertTrue(brick_host._host_ip('localhost'))
        self.assertEqual('127.0.0.1', brick_host._host_ip('no-such-host.'))


class TestPrivsepProblem(TestBrickHost):
    """What start-up can tell about the privsep helper."""

    def with_sudo(self, present=True):
        """This host has sudo, or not (whatever the test machine has)."""
        which = shutil.which

        def fake(name, *args, **kwargs):
            if name == 'sudo':
                return '/usr/bin/sudo' if present else None
            return which(name, *args, **kwargs)
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.brick_host.shutil.which', fake))

    def set_helper(self, command, section='privsep_osbrick'):
        self.conf.register_opts(priv_context.OPTS, group=section)
        self.conf.set_override('helper_command', command, group=section)

    def test_configured_helper_missing(self):
        self.set_helper('/nonexistent/privsep-helper --config-file x')
        self.assertIn('/nonexistent/privsep-helper, which does not exist',
                      self.host.privsep_problem())

    def test_configured_helper_present(self):
        self.set_helper('sh -c true')
        self.set_helper('sh -c true', 'cinder_ext_store_privileged')
        self.assertIsNone(self.host.privsep_problem())

    def test_store_helper_missing(self):
        self.set_helper('sh -c true')
        self.set_helper('/nonexistent/sudo x', 'cinder_ext_store_privileged')
        self.assertIn('[cinder_ext_store_privileged] helper_command runs '
                      '/nonexistent/sudo', self.host.privsep_problem())

    def test_store_helper_unset_needs_rootwrap_when_not_root(self):
        # Its daemon then starts with the root helper (sudo + rootwrap).
        self.set_helper('sh -c true')
        self.host.euid = lambda: 1000
        self.with_sudo()
        self.conf.set_override('rootwrap_config', '/nonexistent/rootwrap.conf',
                               group=base.BACKEND)
        self.assertIn('rootwrap_config /nonexistent/rootwrap.conf does not '
                      'exist', self.host.privsep_problem())

    def test_no_helper_beside_this_python(self):
        # Under uWSGI: sys.prefix of an environment without privsep-helper.
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.brick_host._bindir', lambda: self.tmp))
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.brick_host.shutil.which', lambda name: None))
        problem = self.host.privsep_problem()
        self.assertIn('privsep-helper is not in %s' % self.tmp, problem)
        self.assertIn('set [privsep_osbrick] helper_command', problem)

    def test_non_root_without_rootwrap_config(self):
        self.host.euid = lambda: 1000
        self.with_sudo()
        self.conf.set_override('rootwrap_config', '/nonexistent/rootwrap.conf',
                               group=base.BACKEND)
        self.assertIn('rootwrap_config /nonexistent/rootwrap.conf does not '
                      'exist', self.host.privsep_problem())

    def test_non_root_without_sudo(self):
        self.host.euid = lambda: 1000
        self.with_sudo(False)
        self.assertIn('glance-api is not root and sudo is missing',
                      self.host.privsep_problem())
        self.host.euid = lambda: 0
        self.assertIsNone(self.host.privsep_problem())

    def test_bindir_is_the_environments(self):
        # Not the directory of sys.executable (uwsgi under uWSGI).
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.brick_host.sys.executable', '/usr/bin/uwsgi'))
        self.assertNotEqual('/usr/bin', brick_host._bindir())


class TestDeviceLending(TestBrickHost):
    """A glance-api that is not root borrows the device it attached."""

    def setUp(self):
        super(TestDeviceLending, self).setUp()
        self.lent = self.patch_entry('lend_device')
        self.returned = self.patch_entry('return_device')
        self.uid = 1000
        self.sized = 0
        self.host.euid = lambda: self.uid
        self.useFixture(fixtures.MonkeyPatch(
            'os.access', lambda path, mode: False))

    def patch_entry(self, name):
        calls = []
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.privileged.%s' % name,
            lambda *args: calls.append(args)))
        return calls

    def size(self):
        self.sized += 1
        return 1 << 30

    def test_lends_a_device_under_dev(self):
        # The uid is the daemon's peer's, not an argument: only the path
        # and the volume's size go over.
        self.host.lend({'path': '/dev/loop3'}, self.size)
        self.assertEqual([('/dev/loop3', 1 << 30)], self.lent)

    def test_a_device_the_connection_does_not_name_is_not_lent(self):
        for props in ({'device_path': '/dev/loop4'},
                      {'target_iqn': 'iqn.2010-10.org.openstack:volume-1',
                       'target_lun': 1}):
            e = self.assertRaises(
                exceptions.BackendException, self.host.lend,
                {'path': '/dev/disk/by-path/ip-10.0.0.1:3260-iscsi-'
                         'iqn.2010-10.org.openstack:volume-2-lun-1'},
                self.size, props)
            self.assertIn('not the device of this attachment', str(e))
        self.assertEqual([], self.lent)
        # The device the connection names is lent.
        path = ('/dev/disk/by-path/ip-10.0.0.1:3260-iscsi-'
                'iqn.2010-10.org.openstack:volume-1-lun-1')
        self.host.lend({'path': path}, self.size,
                       {'target_iqn': 'iqn.2010-10.org.openstack:volume-1'})
        self.host.lend({'path': '/dev/loop3'}, self.size,
                       {'device_path': '/dev/loop3'})
        self.assertEqual([path, '/dev/loop3'], [p for p, _s in self.lent])

    def test_nothing_to_lend_as_root(self):
        self.uid = 0
        self.host.lend({'path': '/dev/loop3'}, self.size)
        self.assertEqual([], self.lent)
        self.assertEqual(0, self.sized)  # Cinder was not asked

    def test_nothing_to_lend_when_already_accessible(self):
        self.useFixture(fixtures.MonkeyPatch(
            'os.access', lambda path, mode: True))  # udev rule, group
        self.host.lend({'path': '/dev/loop3'}, self.size)
        self.assertEqual([], self.lent)

    def test_handles_and_share_files_are_not_lent(self):
        self.host.lend({'path': object()}, self.size)  # an RBD handle
        self.host.lend({'path': '/var/lib/glance/mnt/abc/volume-1'},
                       self.size)
        self.host.lend(None, self.size)
        self.assertEqual([], self.lent)

    def test_refusal_is_a_clear_backend_error(self):
        def refuse(path, size):
            raise ValueError('/dev/loop3 is in use on this host: mounted')
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.privileged.lend_device', refuse))
        e = self.assertRaises(exceptions.BackendException, self.host.lend,
                              {'path': '/dev/loop3'}, self.size)
        self.assertIn('runs as uid 1000', str(e))
        self.assertIn('mounted', str(e))

    def owned_by(self, uid):
        self.useFixture(fixtures.MonkeyPatch(
            'os.stat', lambda path: mock.Mock(st_uid=uid)))

    def test_gives_back_a_lent_device(self):
        self.owned_by(1000)
        self.host.give_back({'path': '/dev/loop3'})
        self.assertEqual([('/dev/loop3',)], self.returned)

    def test_root_owned_device_needs_nothing(self):
        self.owned_by(0)
        self.host.give_back({'path': '/dev/loop3'})
        self.assertEqual([], self.returned)

    def test_root_gives_back_without_the_daemon(self):
        # reconcile run by root after a glance-api worker died
        self.uid = 0
        self.owned_by(1000)
        direct = []
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.privileged.give_back', direct.append))
        self.host.give_back({'path': '/dev/loop3'})
        self.assertEqual(['/dev/loop3'], direct)
        self.assertEqual([], self.returned)

    def test_give_back_failure_is_logged_not_raised(self):
        self.owned_by(1000)

        def fail(path):
            raise OSError('daemon gone')
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.privileged.return_device', fail))
        log = self.useFixture(fixtures.FakeLogger())
        self.host.give_back({'path': '/dev/loop3'})
        self.assertIn('Giving device /dev/loop3 back to root failed',
                      log.output)

    def test_disconnect_gives_back_first(self):
        self.owned_by(1000)
        order = []
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.privileged.return_device',
            lambda path: order.append('give back')))
        connector = mock.Mock()
        connector.disconnect_volume.side_effect = (
            lambda *a, **k: order.append('disconnect'))
        self.host.disconnect(connector, {'p': 1}, {'path': '/dev/loop3'},
                             force=True)
        self.assertEqual(['give back', 'disconnect'], order)
        connector.disconnect_volume.assert_called_once_with(
            {'p': 1}, {'path': '/dev/loop3'}, force=True)
