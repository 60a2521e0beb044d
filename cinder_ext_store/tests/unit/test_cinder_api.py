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

import logging

from cinderclient import exceptions as cinder_exc
import ddt
import fixtures
from glance_store import exceptions
from keystoneauth1 import exceptions as ksa_exc
from keystoneauth1 import identity
from keystoneauth1 import token_endpoint
from oslo_config import cfg

from cinder_ext_store import cinder_api
from cinder_ext_store import cinder_session
from cinder_ext_store import options
from cinder_ext_store.tests.unit import base
from cinder_ext_store.tests.unit import fakes
from cinder_ext_store import tuning

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


def session_of(conf):
    return cinder_session.CinderSession(conf, 'images')


def make_conf(**values):
    conf = cfg.ConfigOpts()
    conf([])
    conf.register_opts(options.OPTIONS, group='glance_store')
    for name, value in values.items():
        conf.set_override(name, value, group='glance_store')
    return conf.glance_store


@ddt.ddt
class TestCredentials(base.TestCase):

    @ddt.data((PASSWORD, True), (APPCRED, True), ({}, False),
              (dict(PASSWORD, cinder_store_password=None), False))
    @ddt.unpack
    def test_service_credentials_set(self, values, expected):
        self.assertEqual(expected, cinder_session.service_credentials_set(
            make_conf(**values)))

    def test_incomplete_password(self):
        msg = cinder_session.incomplete_credentials(make_conf(
            **dict(PASSWORD, cinder_store_password=None)))
        self.assertIn('cinder_store_password missing', msg)

    def test_incomplete_application_credential(self):
        msg = cinder_session.incomplete_credentials(make_conf(
            cinder_store_application_credential_id='id'))
        self.assertIn('cinder_store_application_credential_secret', msg)
        self.assertIn('cinder_store_auth_address', msg)

    @ddt.data(PASSWORD, APPCRED, {})
    def test_complete_or_absent(self, values):
        self.assertIsNone(cinder_session.incomplete_credentials(
            make_conf(**values)))


@ddt.ddt
class TestSession(base.TestCase):

    def test_password(self):
        session = session_of(make_conf(**PASSWORD))
        self.assertIsInstance(session.session.auth, identity.V3Password)
        client = session.client(None, '3.54')
        self.assertIsNone(client.client.auth)  # the session's auth is used
        self.assertEqual('3.54', client.api_version.get_string())
        self.assertEqual('volumev3', client.client.service_type)

    def test_application_credential(self):
        session = session_of(make_conf(**APPCRED))
        self.assertIsInstance(session.session.auth,
                              identity.V3ApplicationCredential)

    @ddt.data((dict(cinder_api_insecure=True), False),
              (dict(cinder_ca_certificates_file='/ca.pem'), '/ca.pem'),
              ({}, True))
    @ddt.unpack
    def test_tls(self, values, verify):
        session = session_of(make_conf(**values))
        self.assertEqual(verify, session.session.verify)

    def test_endpoint_template_with_context_token(self):
        # noauth Cinder: the token is "<user>:<project>".
        session = session_of(make_conf(
            cinder_endpoint_template='http://cinder/v3/%(project_id)s'))
        ctx = base.Context(project_id='abc123')
        auth = session.client(ctx).client.auth
        self.assertIsInstance(auth, token_endpoint.Token)
        self.assertEqual('http://cinder/v3/abc123', auth.endpoint)
        self.assertEqual('user:abc123', auth.token)

    def test_context_service_catalog(self):
        session = session_of(make_conf(
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
        session = session_of(make_conf(**values))
        ctx = base.Context()
        if values['cinder_catalog_info'].startswith('image'):
            ctx.service_catalog = CATALOG
        self.assertRaises(exceptions.BadStoreConfiguration, session.client,
                          ctx)

    def test_no_context_no_credentials(self):
        session = session_of(make_conf())
        self.assertRaises(exceptions.BadStoreConfiguration, session.client,
                          None)


class TestSessionAfterFork(base.TestCase):

    def test_a_forked_worker_makes_its_own_session(self):
        # Glance configures the stores (configure_add asks Cinder about
        # the volume type) before it forks its workers.
        session = session_of(make_conf(**PASSWORD))
        parent = session.session
        self.assertIs(parent, session.session)
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.cinder_session.os.getpid', lambda: -42))
        child = session.session
        self.assertIsNot(parent, child)
        self.assertIs(child, session.session)


@ddt.ddt
class TestTranslation(base.TestCase):

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


class TestWait(base.TestCase):

    def test_polls_fast_then_backs_off_within_timeout(self):
        clock = [0.0]
        sleeps = []

        def sleep(seconds):
            sleeps.append(seconds)
            clock[0] += seconds

        cloud = fakes.FakeCinder('/nonexistent', transition_polls=10 ** 6)
        cloud.volumes['v'] = dict(id='v', size=1, name='n', metadata={},
                                  volume_type='t', multiattach=False,
                                  status='creating', created_at='')
        api = cinder_api.CinderAPI(
            lambda v: fakes.FakeClient(cloud, v), 30,
            tuning=tuning.Tuning(sleep=sleep, clock=lambda: clock[0]))
        e = self.assertRaises(exceptions.TimeoutError, api.wait, 'v',
                              'available', ('creating',), 'creation')
        self.assertIsInstance(e, exceptions.BackendException)
        self.assertIn("Timed out after 30s waiting for creation of volume "
                      "v: status still 'creating'", str(e))
        self.assertEqual(0.02, sleeps[0])
        self.assertEqual(0.03, round(sleeps[1], 6))
        self.assertEqual(tuning.DEFAULT.poll_max, max(sleeps))
        self.assertLess(clock[0], 30 + tuning.DEFAULT.poll_max)
        # Bounded load on Cinder: the ramp-up (~10 polls) then at most two
        # polls a second.
        self.assertLess(len(sleeps), 10 + 30 * 2 + 1)
        self.assertTrue(all(s >= 0.5 for s in sleeps[10:]))


@ddt.ddt
class TestRetries(base.TestCase):
    """Transient failures are retried; lost answers never duplicate."""

    def setUp(self):
        super(TestRetries, self).setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.cloud = fakes.FakeCinder(self.tmp, transition_polls=1)
        self.backoffs = []
        self.api = cinder_api.CinderAPI(
            lambda v: fakes.FakeClient(self.cloud, v), 5,
            tuning=tuning.Tuning(backoff=self.backoffs.append,
                                 attach_settle=base.TUNING.attach_settle))
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.INFO))

    def _volume(self):
        return self.api.create(1, 'image-x', {'glance_image_id': 'x'})

    def _attached(self):
        vid = self._volume().id
        att = self.api.attachment_create(vid, {'host': 'h'}, 'rw')
        self.api.attachment_complete(att['id'], vid)
        return vid, att['id']

    @ddt.data(cinder_exc.ClientException(503, 'busy'),
              cinder_exc.ClientException(500, 'oops'),
              ksa_exc.ConnectFailure('reset by peer'),
              ksa_exc.ConnectTimeout('no answer'))
    def test_transient_create_is_retried(self, error):
        self.cloud.fail('create', error)
        volume = self._volume()
        self.assertEqual([volume.id], list(self.cloud.volumes))
        self.assertEqual(2, self.cloud.count('create'))
        self.assertEqual([tuning.DEFAULT.retry_first], self.backoffs)
        self.assertIn('retrying in 0.5s (retry 1 of 3)', self.log.output)

    @ddt.data('get', 'attachment_complete', 'set_metadata',
              'update_readonly_flag', 'attachment_list')
    def test_idempotent_calls_are_retried(self, call):
        vid, aid = self._attached()
        self.cloud.fail(call, cinder_exc.ClientException(503, 'busy'))
        self.api.get(vid)
        self.api.attachment_complete(aid, vid)
        self.api.set_metadata(vid, {'image_size': '5'})
        self.api.attachment_ids(vid)
        self.api.attachment_delete(aid, vid)
        self.cloud.finish_transitions()
        self.api.set_readonly(vid)
        self.assertEqual(1, len(self.backoffs))
        self.assertTrue(self.cloud.volumes[vid]['readonly'])

    def test_persistent_failure_is_a_clean_error(self):
        self.cloud.fail('create', cinder_exc.ClientException(503, 'busy'), 4)
        e = self.assertRaises(exceptions.BackendException, self._volume)
        self.assertIn('busy', str(e))
        self.assertEqual(4, self.cloud.count('create'))
        self.assertEqual([0.5, 1.0, 2.0], self.backoffs)
        self.assertEqual({}, self.cloud.volumes)

    def test_cinder_that_never_answers_is_a_timeout(self):
        # Glance 33 answers glance_store's TimeoutError with 503; the store
        # itself still sees a backend failure.
        self.cloud.fail('get', ksa_exc.ConnectTimeout('no answer'), 10)
        e = self.assertRaises(exceptions.TimeoutError, self.api.get, 'v')
        self.assertIsInstance(e, exceptions.BackendException)
        self.assertIn('Cinder did not answer lookup of volume v in time',
                      str(e))
        self.assertEqual(4, self.cloud.count('get'))

    def test_create_cinder_could_not_place(self):
        # The scheduler found no pool with room: Cinder's user message
        # says so, and Glance answers StorageFull with 413.
        self.cloud.pool_gib = 0
        e = self.assertRaises(exceptions.StorageFull, self._volume)
        self.assertIn('Could not find any available weighted backend',
                      str(e))
        self.assertIn('(status error)', str(e))
        self.cloud.finish_transitions()
        self.assertEqual({}, self.cloud.volumes)

    def test_create_failed_for_another_reason(self):
        self.cloud.create_ends_in = 'error'
        e = self.assertRaises(exceptions.BackendException, self._volume)
        self.assertNotIsInstance(e, exceptions.StorageFull)
        self.assertIn('no reason in its user messages', str(e))
        self.cloud.messages.append(dict(
            resource_uuid=None, event_id='VOLUME_VOLUME_001_002',
            user_message='schedule allocate volume: Driver is not '
                         'initialized at present.'))
        real = self.cloud.create

        def create(*args):
            made = real(*args)
            self.cloud.messages[-1]['resource_uuid'] = made.id
            return made
        self.cloud.create = create
        e = self.assertRaises(exceptions.BackendException, self._volume)
        self.assertNotIsInstance(e, exceptions.StorageFull)
        self.assertIn('Driver is not initialized', str(e))

    @ddt.data(cinder_exc.BadRequest(400, 'bad'),
              cinder_exc.OverLimit(413, 'quota'),
              cinder_exc.ClientException(501, 'not implemented'),
              ksa_exc.SSLError('certificate'))
    def test_permanent_errors_are_not_retried(self, error):
        self.cloud.fail('create', error)
        self.assertRaises((exceptions.GlanceStoreException,
                           exceptions.BackendException), self._volume)
        self.assertEqual(1, self.cloud.count('create'))
        self.assertEqual([], self.backoffs)

    def test_lost_create_answer_makes_one_volume(self):
        self.cloud.lose_answer('create', ksa_exc.ConnectFailure('reset'))
        volume = self._volume()
        self.assertEqual([volume.id], list(self.cloud.volumes))
        self.assertEqual(1, self.cloud.count('create'))
        self.assertEqual('available', self.cloud.volumes[volume.id]['status'])

    def test_lost_create_ignores_older_volumes_of_that_name(self):
        old = self._volume().id
        self.cloud.volumes[old]['created_at'] = '2020-01-01T00:00:00.000000'
        self.cloud.lose_answer('create', ksa_exc.ConnectTimeout('timeout'))
        new = self._volume().id
        self.assertNotEqual(old, new)
        self.assertEqual({old, new}, set(self.cloud.volumes))

    def test_lost_create_answers_every_time(self):
        self.cloud.lose_answer('create', ksa_exc.ConnectFailure('reset'), 4)
        volume = self._volume()  # the first try's volume, adopted
        self.assertEqual([volume.id], list(self.cloud.volumes))

    def test_lost_attachment_create_is_undone_then_retried(self):
        vid = self._volume().id
        self.cloud.lose_answer('attachment_create',
                               cinder_exc.ClientException(504, 'gateway'))
        att = self.api.attachment_create(vid, {'host': 'h'}, 'rw')
        self.assertEqual([att['id']], list(self.cloud.attachments))
        self.assertEqual(2, self.cloud.count('attachment_create'))

    def test_lost_attachment_create_keeps_other_attachments(self):
        vid = self._volume().id
        self.cloud.volumes[vid]['multiattach'] = True
        other = self.api.attachment_create(vid, {'host': 'other'}, 'ro')
        self.cloud.attachment_complete(
            fakes.api_versions.APIVersion('3.54'), other['id'])
        self.cloud.lose_answer('attachment_create',
                               ksa_exc.ConnectFailure('reset'))
        mine = self.api.attachment_create(vid, {'host': 'h'}, 'ro')
        self.assertEqual({other['id'], mine['id']},
                         set(self.cloud.attachments))

    def test_lost_create_never_adopts_another_stores_volume(self):
        # Another backend on the same project and type (a second cinder_ext
        # store, the in-tree driver in a multi-store import) creates the
        # same image's volume at the same moment: same name, metadata, size
        # and type. Ours is told apart by its token, theirs kept.
        theirs = self.cloud.create(fakes.api_versions.APIVersion('3.0'), 1,
                                   'image-x', {'glance_image_id': 'x'},
                                   None).id
        self.cloud.finish_transitions()
        self.cloud.lose_answer('create', ksa_exc.ConnectFailure('reset'))
        mine = self._volume()
        self.assertNotEqual(theirs, mine.id)
        self.assertEqual({theirs, mine.id}, set(self.cloud.volumes))
        self.assertEqual(2, self.cloud.count('create'))  # lost, then again
        self.assertTrue(cinder_api.made_by_store(mine))
        self.assertEqual('available', self.cloud.volumes[theirs]['status'])

    def test_extra_volumes_of_one_request_are_deleted(self):
        # Each retry sends the same token: all it made is this request's.
        self.cloud.lose_answer('create', ksa_exc.ConnectFailure('reset'))
        real = self.cloud.list

        def twice(version, name=None):
            found = real(version, name)
            if len(self.cloud.volumes) == 1:  # a second lost create
                vol = found[0]
                self.cloud.create(version, 1, vol.name, vol.metadata, None)
                found = real(version, name)
            return found

        self.cloud.list = twice
        volume = self._volume()
        self.cloud.finish_transitions()
        self.assertEqual([volume.id], list(self.cloud.volumes))

    def test_lost_attachment_create_keeps_one_made_meanwhile(self):
        # Another reader (or host) attached while our answer was lost: only
        # the attachment our request made is deleted.
        vid = self._volume().id
        self.cloud.volumes[vid]['multiattach'] = True
        real = self.cloud.attachment_create
        raced = []

        def racing(version, volume_id, connector, mode):
            if not raced:  # after our listing, before our create
                other = real(version, volume_id, {'host': 'other'}, 'ro')
                self.cloud.attachment_complete(version, other['id'])
                raced.append(other['id'])
            return real(version, volume_id, connector, mode)

        self.cloud.attachment_create = racing
        self.cloud.lose_answer('attachment_create',
                               ksa_exc.ConnectFailure('reset'))
        mine = self.api.attachment_create(vid, {'host': 'h'}, 'ro')
        self.assertEqual({raced[0], mine['id']},
                         set(self.cloud.attachments))

    def test_lost_attachment_create_keeps_another_hosts_in_flight(self):
        # Host B's create came first and B has not completed it: Cinder
        # refused ours (it makes one attachment at a time), and that
        # answer was lost. B's looks like ours (no host shown before
        # completion): it is watched, B completes it, so it is B's and
        # stays; ours is then made.
        vid = self._volume().id
        self.cloud.volumes[vid]['multiattach'] = True
        v = fakes.api_versions.APIVersion('3.54')
        real_create = self.cloud.attachment_create
        real_list, listed, theirs = self.cloud.attachment_list, [], []

        def b_first_then_ours_lost(version, volume_id, connector, mode):
            if not theirs:
                theirs.append(real_create(v, vid, {'host': 'glance-b'},
                                          'ro')['id'])
                try:
                    real_create(version, volume_id, connector, mode)
                except fakes.cinder_exc.BadRequest:
                    raise ksa_exc.ConnectFailure('reset')  # answer lost
            return real_create(version, volume_id, connector, mode)

        def listing(version, volume_id, detailed=False):
            listed.append(1)
            if len(listed) == 3:  # B connected; it completes now
                self.cloud.attachment_complete(v, theirs[0])
            return real_list(version, volume_id, detailed)

        self.cloud.attachment_create = b_first_then_ours_lost
        self.cloud.attachment_list = listing
        mine = self.api.attachment_create(vid, {'host': 'h'}, 'ro')
        self.assertEqual({theirs[0], mine['id']},
                         set(self.cloud.attachments))
        self.assertEqual('attached',
                         self.cloud.attachments[theirs[0]]['status'])
        self.assertGreaterEqual(len(listed), 3)

    def test_completed_attachment_of_this_host_only_when_it_may_be(self):
        # Completed means its maker got the answer: a lost request's never
        # is; a reader that died after completing may have left one.
        vid = self._volume().id
        self.cloud.volumes[vid]['multiattach'] = True
        v = fakes.api_versions.APIVersion('3.54')
        ours = self.cloud.attachment_create(v, vid, {'host': 'h'}, 'ro')
        self.cloud.attachment_complete(v, ours['id'])
        other = self.cloud.attachment_create(v, vid, {'host': 'b'}, 'ro')
        self.cloud.attachment_complete(v, other['id'])
        self.assertEqual([], self.api.attachments_made_since(
            vid, set(), 'ro', 'h'))
        self.assertEqual([ours['id']], self.api.attachments_made_since(
            vid, set(), 'ro', 'h', completed=True))

    def test_an_attachment_still_being_made_is_the_requests(self):
        # Cinder reserves the attachment (mode 'null'), then sets the mode
        # once the driver answered: a reader killed in between leaves one.
        vid = self._volume().id
        v = fakes.api_versions.APIVersion('3.54')
        made = self.cloud.attachment_create(v, vid, {'host': 'h'}, 'null')
        self.assertEqual([made['id']], self.api.attachments_made_since(
            vid, set(), 'ro', 'h'))
        # There before the request: not its.
        self.assertEqual([], self.api.attachments_made_since(
            vid, {made['id']}, 'ro', 'h'))

    def test_lost_delete_answer(self):
        vid = self._volume().id
        self.cloud.lose_answer('delete', ksa_exc.ConnectFailure('reset'))
        self.api.delete(vid)
        self.assertEqual(1, self.cloud.count('delete'))
        self.cloud.finish_transitions()
        self.assertEqual({}, self.cloud.volumes)

    def test_lost_extend_answer(self):
        vid = self._volume().id
        self.cloud.lose_answer('extend', ksa_exc.ConnectTimeout('timeout'))
        self.api.extend(vid, 2, attached=False)
        self.assertEqual(1, self.cloud.extends_accepted)
        self.assertEqual(2, self.api.wait(vid, 'available', ('extending',),
                                          'extension').size)

    def test_lost_attachment_delete_answer(self):
        vid, aid = self._attached()
        self.cloud.lose_answer('attachment_delete',
                               cinder_exc.ClientException(502, 'proxy'))
        self.api.attachment_delete(aid, vid)
        self.assertEqual({}, self.cloud.attachments)
        self.assertEqual(1, self.cloud.count('attachment_delete'))

    def test_attachment_already_gone(self):
        vid, aid = self._attached()
        self.api.attachment_delete(aid, vid)
        self.api.attachment_delete(aid, vid)  # no error
        self.assertIn('already deleted', self.log.output)

    def test_delete_quietly_when_an_attachment_is_already_gone(self):
        # Cinder refuses the delete (attached); by the time the store
        # deletes the attachment someone else has: the volume still goes.
        vid, aid = self._attached()
        self.cloud.lose_answer('attachment_delete',
                               cinder_exc.NotFound(404, 'gone'))
        self.api.delete_quietly(vid)
        self.cloud.finish_transitions()
        self.assertEqual({}, self.cloud.volumes)
        self.assertEqual({}, self.cloud.attachments)

    def test_delete_quietly_reports_what_it_leaves(self):
        vid = self._volume().id
        self.cloud.fail('delete', cinder_exc.BadRequest(400, 'no'), 2)
        self.cloud.fail('force_delete', cinder_exc.Forbidden(403, 'admin'))
        self.api.delete_quietly(vid)
        self.assertIn('Could not delete volume %s; it is left behind' % vid,
                      self.log.output)

    @ddt.data(KeyboardInterrupt, SystemExit)
    def test_interrupted_wait_deletes_the_volume(self, interrupt):
        # Interrupted while 'creating'; the cleanup waits (a moment, as
        # Cinder would) until the volume can be deleted without force.
        self.cloud.transition_polls = 3
        interrupts = [interrupt()]

        def sleep(seconds):
            if interrupts:
                raise interrupts.pop()
        api = cinder_api.CinderAPI(
            lambda v: fakes.FakeClient(self.cloud, v), 5,
            tuning=tuning.Tuning(sleep=sleep))
        self.assertRaises(interrupt, api.create, 1, 'image-x', {})
        self.assertEqual(['deleting'], [v['status'] for v in
                                        self.cloud.volumes.values()])
        self.assertEqual(0, self.cloud.count('force_delete'))
