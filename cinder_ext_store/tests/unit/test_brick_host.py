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
        self.assertTrue(brick_host._host_ip('localhost'))
        self.assertEqual('127.0.0.1', brick_host._host_ip('no-such-host.'))


class TestPrivsepProblem(TestBrickHost):
    """What start-up can tell about the privsep helper."""

    def set_helper(self, command):
        from oslo_privsep import priv_context
        self.conf.register_opts(priv_context.OPTS, group='privsep_osbrick')
        self.conf.set_override('helper_command', command,
                               group='privsep_osbrick')

    def test_configured_helper_missing(self):
        self.set_helper('/nonexistent/privsep-helper --config-file x')
        self.assertIn('/nonexistent/privsep-helper, which does not exist',
                      self.host.privsep_problem())

    def test_configured_helper_present(self):
        self.set_helper('sh -c true')
        self.assertIsNone(self.host.privsep_problem())

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
        self.useFixture(fixtures.MonkeyPatch('os.geteuid', lambda: 1000))
        self.conf.set_override('rootwrap_config', '/nonexistent/rootwrap.conf',
                               group=base.BACKEND)
        self.assertIn('rootwrap_config /nonexistent/rootwrap.conf does not '
                      'exist', self.host.privsep_problem())

    def test_bindir_is_the_environments(self):
        # Not the directory of sys.executable (uwsgi under uWSGI).
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.brick_host.sys.executable', '/usr/bin/uwsgi'))
        self.assertNotEqual('/usr/bin', brick_host._bindir())
