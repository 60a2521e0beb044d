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

from cinderclient import exceptions as cinder_exc
import ddt
from glance_store import exceptions
from keystoneauth1 import exceptions as ksa_exc
from keystoneauth1 import identity
from keystoneauth1 import token_endpoint
from oslo_config import cfg
import testtools

from cinder_ext_store import cinder_api
from cinder_ext_store import options
from cinder_ext_store.tests.unit import base
from cinder_ext_store.tests.unit import fakes

PASSWORD = dict(cinder_store_auth_address='http://ks/v3',
                cinder_store_user_name='glance',
                cinder_store_password='secret',
                cinder_store_project_name='service')
APPCRED = dict(cinder_store_auth_address='http://ks/v3',
               cinder_store_application_credential_id='id',
               cinder_store_application_credential_secret='s3cret')
CATALOG = [{'type': 'volumev3', 'name': 'cinderv3',
            'endpoints': [{'region': 'R1',
                           'publicURL': 'http://cinder-r1/v3/p'},
                          {'region': 'R2',
                           'publicURL': 'http://cinder-r2/v3/p'}]}]


def make_conf(**values):
    conf = cfg.ConfigOpts()
    conf([])
    conf.register_opts(options.OPTIONS, group='glance_store')
    for name, value in values.items():
        conf.set_override(name, value, group='glance_store')
    return conf.glance_store


@ddt.ddt
class TestCredentials(testtools.TestCase):

    @ddt.data((PASSWORD, True), (APPCRED, True), ({}, False),
              (dict(PASSWORD, cinder_store_password=None), False))
    @ddt.unpack
    def test_service_credentials_set(self, values, expected):
        self.assertEqual(expected, cinder_api.service_credentials_set(
            make_conf(**values)))

    def test_incomplete_password(self):
        msg = cinder_api.incomplete_credentials(make_conf(
            **dict(PASSWORD, cinder_store_password=None)))
        self.assertIn('cinder_store_password missing', msg)

    def test_incomplete_application_credential(self):
        msg = cinder_api.incomplete_credentials(make_conf(
            cinder_store_application_credential_id='id'))
        self.assertIn('cinder_store_application_credential_secret', msg)
        self.assertIn('cinder_store_auth_address', msg)

    @ddt.data(PASSWORD, APPCRED, {})
    def test_complete_or_absent(self, values):
        self.assertIsNone(cinder_api.incomplete_credentials(
            make_conf(**values)))


@ddt.ddt
class TestSession(testtools.TestCase):

    def test_password(self):
        session = cinder_api.CinderSession(make_conf(**PASSWORD))
        self.assertIsInstance(session.session.auth, identity.V3Password)
        client = session.client(None, '3.54')
        self.assertIsNone(client.client.auth)  # the session's auth is used
        self.assertEqual('3.54', client.api_version.get_string())
        self.assertEqual('volumev3', client.client.service_type)

    def test_application_credential(self):
        session = cinder_api.CinderSession(make_conf(**APPCRED))
        self.assertIsInstance(session.session.auth,
                              identity.V3ApplicationCredential)

    @ddt.data((dict(cinder_api_insecure=True), False),
              (dict(cinder_ca_certificates_file='/ca.pem'), '/ca.pem'),
              ({}, True))
    @ddt.unpack
    def test_tls(self, values, verify):
        session = cinder_api.CinderSession(make_conf(**values))
        self.assertEqual(verify, session.session.verify)

    def test_endpoint_template_with_context_token(self):
        # noauth Cinder: the token is "<user>:<project>".
        session = cinder_api.CinderSession(make_conf(
            cinder_endpoint_template='http://cinder/v3/%(project_id)s'))
        ctx = base.Context(project_id='abc123')
        auth = session.client(ctx).client.auth
        self.assertIsInstance(auth, token_endpoint.Token)
        self.assertEqual('http://cinder/v3/abc123', auth.endpoint)
        self.assertEqual('user:abc123', auth.token)

    def test_context_service_catalog(self):
        session = cinder_api.CinderSession(make_conf(
            cinder_os_region_name='R2'))
        ctx = base.Context()
        ctx.auth_token = 'tok'
        ctx.service_catalog = CATALOG
        auth = session.client(ctx).client.auth
        self.assertEqual('http://cinder-r2/v3/p', auth.endpoint)
        self.assertEqual('tok', auth.token)

    @ddt.data(dict(cinder_catalog_info='volumev3::publicURL'),
              dict(cinder_catalog_info='image::publicURL'),
              dict(cinder_catalog_info='broken'))
    def test_context_errors(self, values):
        session = cinder_api.CinderSession(make_conf(**values))
        ctx = base.Context()
        if values['cinder_catalog_info'].startswith('image'):
            ctx.service_catalog = CATALOG
        self.assertRaises(exceptions.BadStoreConfiguration, session.client,
                          ctx)

    def test_no_context_no_credentials(self):
        session = cinder_api.CinderSession(make_conf())
        self.assertRaises(exceptions.BadStoreConfiguration, session.client,
                          None)


@ddt.ddt
class TestTranslation(testtools.TestCase):

    @ddt.data((cinder_exc.OverLimit(413), exceptions.StorageFull),
              (cinder_exc.NotFound(404), exceptions.NotFound),
              (cinder_exc.Forbidden(403), exceptions.Forbidden),
              (cinder_exc.Unauthorized(401), exceptions.Forbidden),
              (cinder_exc.ClientException(500), exceptions.BackendException),
              (ksa_exc.ConnectFailure('refused'),
               exceptions.BackendException))
    @ddt.unpack
    def test_errors(self, raised, expected):
        def fail():
            with cinder_api.translated('lookup', 'vol-1'):
                raise raised
        e = self.assertRaises(expected, fail)
        self.assertIn('vol-1', str(e))

    def test_store_errors_pass_through(self):
        def fail():
            with cinder_api.translated('lookup'):
                raise exceptions.Invalid()
        self.assertRaises(exceptions.Invalid, fail)

    def test_offline_extend_refusal_is_not_extend_refused(self):
        cloud = fakes.FakeCinder('/nonexistent')
        api = cinder_api.CinderAPI(
            lambda v: fakes.FakeClient(cloud, v), 1)
        cloud.fail('extend', cinder_exc.BadRequest(400, 'no'))
        e = self.assertRaises(exceptions.BackendException, api.extend,
                              'vol-1', 2, attached=False)
        self.assertNotIsInstance(e, cinder_api.ExtendRefused)


class TestWait(testtools.TestCase):

    def test_polls_fast_then_backs_off_within_timeout(self):
        clock = [0.0]
        sleeps = []

        def sleep(seconds):
            sleeps.append(seconds)
            clock[0] += seconds

        cloud = fakes.FakeCinder('/nonexistent', transition_polls=10 ** 6)
        cloud.volumes['v'] = dict(id='v', size=1, name='n', metadata={},
                                  volume_type='t', multiattach=False,
                                  status='creating')
        api = cinder_api.CinderAPI(
            lambda v: fakes.FakeClient(cloud, v), 30, sleep=sleep,
            clock=lambda: clock[0])
        e = self.assertRaises(exceptions.BackendException, api.wait, 'v',
                              'available', ('creating',), 'creation')
        self.assertIn("Timed out after 30s waiting for creation of volume "
                      "v: status still 'creating'", str(e))
        self.assertEqual(0.02, sleeps[0])
        self.assertEqual(0.03, round(sleeps[1], 6))
        self.assertEqual(cinder_api.POLL_MAX, max(sleeps))
        self.assertLess(clock[0], 30 + cinder_api.POLL_MAX)
        # Bounded load on Cinder: the ramp-up (~10 polls) then at most two
        # polls a second.
        self.assertLess(len(sleeps), 10 + 30 * 2 + 1)
        self.assertTrue(all(s >= 0.5 for s in sleeps[10:]))
