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

import importlib.util
import os
from unittest import mock

from cinderclient import exceptions as cinder_exc
import ddt
import fixtures
from keystoneauth1 import exceptions as ksa_exc
from oslo_config import cfg

from cinder_ext_store import check
from cinder_ext_store import host_records
from cinder_ext_store.tests.unit import base


class Session(object):
    """The keystoneauth session of the store, as far as check uses it."""

    def __init__(self, error=None):
        self.error = error

    def get_token(self):
        if self.error:
            raise self.error
        return 'token'


class CheckTestCase(base.StoreTestCase):

    def setUp(self):
        super(CheckTestCase, self).setUp()
        self.api = self.store.cinder.api()
        self.store.cinder.session = Session()
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.check.check_endpoint',
            lambda store: check.Result('endpoint', check.OK, 'stub')))

    def results(self, **kw):
        return {r.check: r for r in check.run_checks(self.store, **kw)}


class TestChecks(CheckTestCase):

    def test_volume_type(self):
        conf = self.make_conf(cinder_volume_type='fast')
        self.store = self.make_store(conf)
        self.cloud.type_specs['fast'] = {'multiattach': '<is> True'}
        r = check.check_volume_type(self.store, self.api)
        self.assertEqual((check.OK, 'fast exists; multiattach: yes: several '
                          'glance-api hosts read one image at once'),
                         (r.status, r.detail))
        self.cloud.type_specs['fast'] = {}
        r = check.check_volume_type(self.store, self.api)
        self.assertEqual(check.OK, r.status)
        self.assertIn('multiattach: no: one glance-api host at a time reads '
                      'an image', r.detail)

    def test_missing_volume_type(self):
        self.store = self.make_store(self.make_conf(
            cinder_volume_type='gold'))
        r = check.check_volume_type(self.store, self.api)
        self.assertEqual(check.FAIL, r.status)
        self.assertIn('volume type gold does not exist', r.detail)
        self.assertIn('openstack volume type create gold', r.fix)

    def test_default_type(self):
        r = check.check_volume_type(self.store, self.api)
        self.assertIn("Cinder's default (__DEFAULT__)", r.detail)

    def quota(self, volumes=-1, gib=10 ** 6, used=0):
        for name, value in (('cinder_store_auth_address', 'http://ks/v3'),
                            ('cinder_store_user_name', 'glance'),
                            ('cinder_store_password', 'secret'),
                            ('cinder_store_project_name', 'service')):
            self.conf.set_override(name, value, group=base.BACKEND)
        self.cloud.quota_volumes, self.cloud.quota_gib = volumes, gib
        for _ in range(used):
            self.add(b'x' * 10, image_id='image-%d' % _)
        return check.check_quota(self.store, self.api)

    def test_quota_with_room(self):
        r = self.quota(volumes=100, used=2)
        self.assertEqual(check.OK, r.status)
        self.assertIn('volumes 2 of 100 used', r.detail)

    def test_quota_nearly_full_warns(self):
        r = self.quota(volumes=20, used=17)
        self.assertEqual(check.WARN, r.status)
        self.assertIn('little room left in volumes', r.detail)
        self.assertIn('openstack quota set', r.fix)

    def test_quota_full_fails(self):
        r = self.quota(volumes=2, used=2)
        self.assertEqual(check.FAIL, r.status)
        self.assertIn('volumes: no room, uploads fail with 413', r.detail)

    def test_unlimited_quota(self):
        r = self.quota()
        self.assertEqual(check.OK, r.status)
        self.assertIn('volumes unlimited', r.detail)

    def test_lock_path_not_writable(self):
        blocker = os.path.join(self.tmp, 'a-file')
        open(blocker, 'w').close()
        self.conf.set_override('lock_path', os.path.join(blocker, 'locks'),
                               group='oslo_concurrency')
        r = check.check_lock_path(self.store)
        self.assertEqual(check.FAIL, r.status)
        self.assertIn('[oslo_concurrency] lock_path', r.fix)

    def test_wrong_password(self):
        self.store.cinder.session = Session(ksa_exc.Unauthorized(
            'The request you have made requires authentication.'))
        for name, value in (('cinder_store_auth_address', 'http://ks/v3'),
                            ('cinder_store_user_name', 'glance'),
                            ('cinder_store_password', 'wrong'),
                            ('cinder_store_project_name', 'service')):
            self.conf.set_override(name, value, group=base.BACKEND)
        r = check.check_credentials(self.store)
        self.assertEqual(check.FAIL, r.status)
        self.assertIn('Keystone refused', r.detail)
        self.assertIn('cinder_store_password', r.fix)

    def test_privsep_cannot_start(self):
        self.host.connector_properties = lambda: (_ for _ in ()).throw(
            OSError('sudo: a password is required'))
        r = check.check_privsep(self.store)
        self.assertEqual(check.FAIL, r.status)
        self.assertIn('sudo: a password is required', r.detail)
        self.assertIn('helper_command', r.fix)

    def test_device_access_as_root(self):
        self.host.euid = lambda: 0
        r = check.check_device_access(self.store)
        self.assertEqual(check.OK, r.status)
        self.assertIn('root', r.detail)

    def test_device_access_judged_for_glance_apis_user(self):
        # Run as root for a glance-api that is not: the helper is needed.
        self.host.privileged_uid = lambda: 0
        self.host.euid = lambda: 0
        r = check.check_device_access(self.store, uid=997)
        self.assertEqual(check.OK, r.status, r.detail)
        self.assertIn('lent to uid 997', r.detail)
        self.host.privileged_uid = lambda: 997
        self.assertEqual(check.FAIL, check.check_device_access(
            self.store, uid=997).status)

    def test_device_access_helper_runs_as_root(self):
        self.host.privileged_uid = lambda: 0
        self.host.euid = lambda: 997
        r = check.check_device_access(self.store)
        self.assertEqual(check.OK, r.status, r.detail)
        self.assertIn('lent to uid 997', r.detail)

    def test_device_access_helper_cannot_start(self):
        def refused():
            raise OSError('sudo: a terminal is required')
        self.host.privileged_uid = refused
        self.host.euid = lambda: 997
        r = check.check_device_access(self.store)
        self.assertEqual(check.FAIL, r.status)
        self.assertIn('a terminal is required', r.detail)
        self.assertIn('[cinder_ext_store_privileged] helper_command', r.fix)

    def test_device_access_helper_not_root(self):
        self.host.privileged_uid = lambda: 997
        self.host.euid = lambda: 997
        r = check.check_device_access(self.store)
        self.assertEqual(check.FAIL, r.status)
        self.assertIn('uid 997, not root', r.detail)

    def test_probe_extend_allowed(self):
        r = check.check_online_extend(self.store, self.api, probe=True)
        self.assertEqual(check.OK, r.status, r.detail)
        self.cloud.finish_transitions()
        self.assertEqual({}, self.cloud.volumes)

    def test_probe_extend_forbidden(self):
        self.cloud.policy_denies_extend_attached = True
        r = check.check_online_extend(self.store, self.api, probe=True)
        self.assertEqual(check.WARN, r.status)
        self.assertIn('HTTP 403', r.detail)
        self.assertIn('cinder_do_extend_attached = False', r.fix)
        self.assertNothingLeft()

    def test_probe_extend_scheduler_refuses(self):
        self.cloud.online_extend = False
        r = check.check_online_extend(self.store, self.api, probe=True)
        self.assertEqual(check.WARN, r.status)
        self.assertIn("scheduler refused", r.detail)
        self.assertNothingLeft()

    def test_without_probe(self):
        r = check.check_online_extend(self.store, self.api, probe=False)
        self.assertEqual(check.SKIP, r.status)

    def test_write_test(self):
        r = check.check_write(self.store, self.api, write_test=True)
        self.assertEqual(check.OK, r.status, r.detail)
        for step in ('create', 'attach rw', 'write', 'detach rw', 'attach ro',
                     'read', 'detach ro', 'delete'):
            self.assertIn(step + ' ', r.detail)
        self.assertNothingLeft()

    def test_write_test_failure_cleans_up(self):
        self.cloud.fail('attachment_complete',
                        cinder_exc.BadRequest(400, 'nope'))
        r = check.check_write(self.store, self.api, write_test=True)
        self.assertEqual(check.FAIL, r.status)
        self.assertIn('nope', r.detail)
        self.assertNothingLeft()


class VersionsProbe(object):
    """cinderclient's HTTP client, as far as the endpoint check uses it."""

    def __init__(self, versions=None, error=None,
                 endpoint='http://cinder:8776/v3/c0ffee'):
        self.versions = versions
        self.error = error
        self.endpoint = endpoint
        self.asked = []
        self.session = self

    def get_endpoint(self):
        if self.error:
            raise self.error
        return self.endpoint

    def get(self, url, authenticated=True, raise_exc=True):
        self.asked.append((url, authenticated))
        return mock.Mock(json=lambda: {'versions': self.versions})


@ddt.ddt
class TestEndpoint(base.StoreTestCase):
    """The endpoint probe: Cinder's version document, unauthenticated."""

    def probe(self, **kw):
        probe = VersionsProbe(**kw)
        self.store.cinder.client = lambda: mock.Mock(client=probe)
        return probe, check.check_endpoint(self.store)

    @ddt.data('3.54', '3.71')
    def test_new_enough(self, highest):
        probe, r = self.probe(versions=[
            {'id': 'v2.0', 'version': ''},
            {'id': 'v3.0', 'version': highest}])
        self.assertEqual(check.OK, r.status, r.detail)
        self.assertIn('microversions up to %s (needs 3.54' % highest,
                      r.detail)
        self.assertEqual([('http://cinder:8776/', False)], probe.asked)

    def test_too_old(self):
        _probe, r = self.probe(versions=[{'id': 'v3.0', 'version': '3.27'}])
        self.assertEqual(check.FAIL, r.status)
        self.assertIn('up to microversion 3.27; the store needs 3.54',
                      r.detail)
        self.assertIn('upgrade Cinder', r.fix)

    @ddt.data(dict(versions=[{'id': 'v2.0', 'version': ''}]),
              dict(error=OSError('connection refused')))
    def test_no_answer(self, kw):
        _probe, r = self.probe(**kw)
        self.assertEqual(check.FAIL, r.status)
        self.assertIn('Cinder does not answer', r.detail)
        self.assertIn('cinder_catalog_info', r.fix)


class TestLocations(CheckTestCase):

    def locations(self, show, backends):
        for opt in (cfg.BoolOpt('show_multiple_locations', default=False),
                    cfg.DictOpt('enabled_backends')):
            try:
                self.conf.register_opt(opt)
            except cfg.DuplicateOptError:
                pass
        self.conf.set_override('show_multiple_locations', show)
        self.conf.set_override('enabled_backends', backends)
        return check.check_locations(self.store)

    def test_off_is_ok(self):
        result = self.locations(False, {'images': 'cinder_ext',
                                        'intree': 'cinder'})
        self.assertEqual(check.OK, result.status)

    def test_in_tree_backend_beside_locations_warns(self):
        result = self.locations(True, {'images': 'cinder_ext',
                                       'intree': 'cinder', 'f': 'file'})
        self.assertEqual(check.WARN, result.status)
        self.assertIn('in-tree cinder backend(s) intree', result.detail)
        self.assertIn('remove the in-tree', result.fix)

    def test_locations_alone_warn(self):
        result = self.locations(True, {'images': 'cinder_ext'})
        self.assertEqual(check.WARN, result.status)
        self.assertIn('OSSN-0065', result.detail)

    def test_without_glance_options(self):
        # Outside glance-api the option is not registered: off.
        self.assertEqual(check.OK, check.check_locations(self.store).status)


class TestOptions(CheckTestCase):

    def options(self, text, **overrides):
        path = os.path.join(self.tmp, 'glance-api.conf')
        with open(path, 'w') as f:
            f.write(text)
        conf = self.make_conf(**overrides)
        conf(['--config-file', path], project='glance')
        return check.check_options(self.make_store(conf))

    def test_known_options(self):
        result = self.options('[DEFAULT]\ndebug = True\n[%s]\n'
                              'cinder_volume_type = x\n'
                              'CINDER_EXT_DIRECT_IO = False\n'
                              % base.BACKEND)
        self.assertEqual(check.OK, result.status)

    def test_misspelt_option(self):
        result = self.options('[%s]\ncinder_volume_typ = fast\n'
                              'cinder_do_extend_attached = True\n'
                              % base.BACKEND)
        self.assertEqual(check.WARN, result.status)
        self.assertIn('ignored: cinder_volume_typ (cinder_volume_type?)',
                      result.detail)

    def test_growth_ceiling_below_floor(self):
        result = self.options('', cinder_ext_growth_min_gib=8,
                              cinder_ext_growth_max_gib=4)
        self.assertEqual(check.WARN, result.status)
        self.assertIn('the store grows by 8 GiB', result.detail)

    def test_spares_without_service_credentials(self):
        result = self.options('', cinder_ext_spare_volumes=1)
        self.assertEqual(check.WARN, result.status)
        self.assertIn('no spare volumes are made', result.detail)
        result = self.options('', cinder_ext_spare_volumes=1,
                              cinder_store_auth_address='http://ks/v3',
                              cinder_store_user_name='glance',
                              cinder_store_password='secret',
                              cinder_store_project_name='service')
        self.assertEqual(check.OK, result.status)


class BackendsTestCase(CheckTestCase):

    def enable(self, backends, types):
        """``enabled_backends`` and the other backends' volume types."""
        try:
            self.conf.register_opt(cfg.DictOpt('enabled_backends'))
        except cfg.DuplicateOptError:
            pass
        self.conf.set_override('enabled_backends', backends)
        for name, vtype in types.items():
            self.conf.register_opts(
                [cfg.StrOpt('cinder_volume_type')], group=name)
            self.conf.set_override('cinder_volume_type', vtype, group=name)


class TestRegisteredLocations(BackendsTestCase):

    def registered(self, backends, types):
        self.enable(backends, types)
        return check.check_registered_locations(self.store, self.api)

    def test_first_of_its_type_gets_them(self):
        backend = self.store.backend_group
        result = self.registered({backend: 'cinder_ext', 'other': 'cinder',
                                  'f': 'file'}, {'other': 'images'})
        self.assertEqual(check.OK, result.status)
        self.assertIn('go to this backend', result.detail)

    def test_a_backend_listed_before_on_the_same_type_gets_them(self):
        backend = self.store.backend_group
        vtype = self.store.volume_type_name(self.api)
        result = self.registered({'intree': 'cinder', backend: 'cinder_ext',
                                  'other': 'cinder_ext'},
                                 {'intree': vtype, 'other': 'elsewhere'})
        self.assertEqual(check.WARN, result.status)
        self.assertIn('go to backend intree, the first of intree, %s'
                      % backend, result.detail)
        self.assertIn('first in enabled_backends', result.fix)

    def test_unset_type_is_cinders_default(self):
        # The other backend has no type: Cinder's default, as this one.
        self.conf.set_override('cinder_volume_type', None,
                               group=self.store.backend_group)
        result = self.registered({'before': 'cinder',
                                  self.store.backend_group: 'cinder_ext'},
                                 {'before': None})
        self.assertEqual(check.WARN, result.status)


class TestIntreeBeside(BackendsTestCase):

    def beside(self, backends, types):
        self.enable(backends, types)
        return check.check_intree_beside(self.store, self.api)

    def test_none(self):
        result = self.beside({self.store.backend_group: 'cinder_ext',
                              'f': 'file'}, {})
        self.assertEqual((check.OK, 'none enabled beside this store'),
                         (result.status, result.detail))

    def test_on_another_type_is_ok(self):
        result = self.beside({self.store.backend_group: 'cinder_ext',
                              'old': 'cinder'}, {'old': 'elsewhere'})
        self.assertEqual(check.OK, result.status)
        self.assertIn('old beside, on other volume types (elsewhere)',
                      result.detail)

    def test_on_this_stores_type_warns(self):
        vtype = self.store.volume_type_name(self.api)
        result = self.beside({'old': 'cinder',
                              self.store.backend_group: 'cinder_ext',
                              'older': 'cinder'},
                             {'old': vtype, 'older': 'elsewhere'})
        self.assertEqual(check.WARN, result.status)
        self.assertIn("backend(s) old use this store's volume type %s"
                      % vtype, result.detail)
        self.assertIn('volume type of their own', result.fix)

    def test_unset_type_is_cinders_default(self):
        self.conf.set_override('cinder_volume_type', None,
                               group=self.store.backend_group)
        result = self.beside({'old': 'cinder',
                              self.store.backend_group: 'cinder_ext'},
                             {'old': None})
        self.assertEqual(check.WARN, result.status)


class TestCeph(CheckTestCase):
    """An RBD backend: known from the write test's connection."""

    def setUp(self):
        super(TestCeph, self).setUp()
        self.cloud.protocol = 'rbd'
        self.ceph = os.path.join(self.tmp, 'ceph')
        os.mkdir(self.ceph)
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.ceph_pool.CEPH_DIR', self.ceph))
        self.keyring = os.path.join(self.ceph, 'ceph.client.cinder.keyring')
        self.bindings(True)

    def bindings(self, present):
        real = importlib.util.find_spec
        self.useFixture(fixtures.MonkeyPatch(
            'importlib.util.find_spec',
            lambda name, *a: (object() if present else None)
            if name in ('rados', 'rbd') else real(name, *a)))

    def write_keyring(self, mode=0o640):
        with open(self.keyring, 'w') as f:
            f.write('[client.cinder]\n\tkey = x\n')
        os.chmod(self.keyring, mode)

    def test_rbd_rows_replace_the_device_row(self):
        self.write_keyring()
        results = self.results(write_test=True)
        self.assertEqual(check.OK, results['write test'].status)
        self.assertIn('not used: RBD volumes are opened with librbd',
                      results['device access'].detail)
        self.assertEqual((check.OK, check.OK),
                         (results['ceph bindings'].status,
                          results['ceph keyring'].status))
        self.assertIn(self.keyring, results['ceph keyring'].detail)

    def test_keyring_missing(self):
        r = check._ceph_rows(self.connection(), os.geteuid())[1]
        self.assertEqual(check.FAIL, r.status)
        self.assertIn(self.keyring, r.detail)
        self.assertIn("Cinder's rbd_user", r.fix)

    def test_keyring_not_readable_by_glance_apis_user(self):
        self.write_keyring(0o600)
        other = os.geteuid() + 4242 if os.geteuid() else 4242
        r = check._ceph_rows(self.connection(), other)[1]
        self.assertEqual(check.FAIL, r.status)
        self.assertIn('not readable by uid %d' % other, r.detail)

    def test_bindings_missing(self):
        self.bindings(False)
        self.write_keyring()
        r = check._ceph_rows(self.connection(), os.geteuid())[0]
        self.assertEqual(check.FAIL, r.status)
        self.assertIn('rados, rbd', r.detail)
        self.assertIn('python3-rados', r.fix)

    def test_rbd_rows_from_the_last_uploads_record(self):
        # No write test: an upload of this store on this host recorded how
        # its volumes came.
        self.write_keyring()
        self.add(base.payload(3000))
        results = self.results()
        self.assertEqual(check.SKIP, results['write test'].status)
        self.assertEqual((check.OK, 'rbd (recorded by the store\'s last '
                          'attach on this host)'),
                         (results['protocol'].status,
                          results['protocol'].detail))
        self.assertEqual((check.OK, check.OK),
                         (results['ceph bindings'].status,
                          results['ceph keyring'].status))
        self.assertIn('not used: RBD', results['device access'].detail)

    def test_unknown_protocol_without_write_test_or_record(self):
        results = self.results()
        self.assertEqual(check.SKIP, results['protocol'].status)
        self.assertIn('run with --write-test', results['protocol'].detail)
        self.assertNotIn('ceph keyring', results)

    def test_other_protocols_have_no_ceph_rows(self):
        self.assertEqual([], check._ceph_rows(host_records.backend_facts(
            {'driver_volume_type': 'iscsi'}), 0))
        self.assertEqual([], check._ceph_rows(None, 0))

    @staticmethod
    def connection():
        """The facts of an RBD connection, as the write test sees them."""
        return host_records.backend_facts(
            {'driver_volume_type': 'rbd', 'cluster_name': 'ceph',
             'auth_username': 'cinder', 'name': 'volumes/volume-x'})


class TestRun(CheckTestCase):

    def test_all_good(self):
        results = self.results(probe=True, write_test=True)
        self.assertEqual(
            ['credentials', 'endpoint', 'volume type',
             'registered locations', 'in-tree backends', 'quota',
             'options', 'lock path',
             'privsep', 'device access', 'locations', 'in-use extend',
             'write test', 'protocol'],
            list(results))
        # The fake store has no credentials of its own: they warn, and the
        # quota is each request's project's.
        self.assertEqual(['credentials', 'quota'], [
            name for name, r in results.items() if r.status != check.OK])
        self.assertEqual(check.SKIP, results['quota'].status)
        self.assertEqual(check.WARN, results['credentials'].status)

    def test_bad_credentials_skip_the_endpoint(self):
        self.store.cinder.session = Session(ksa_exc.Unauthorized('401'))
        for name, value in (('cinder_store_auth_address', 'http://ks/v3'),
                            ('cinder_store_user_name', 'glance'),
                            ('cinder_store_password', 'wrong'),
                            ('cinder_store_project_name', 'service')):
            self.conf.set_override(name, value, group=base.BACKEND)
        results = self.results()
        self.assertEqual(check.FAIL, results['credentials'].status)
        self.assertEqual(check.SKIP, results['endpoint'].status)

    def test_failure_skips_what_needs_it(self):
        self.store = self.make_store(self.make_conf(
            cinder_volume_type='gold'))
        results = self.results(probe=True, write_test=True)
        self.assertEqual(check.FAIL, results['volume type'].status)
        self.assertEqual(check.SKIP, results['write test'].status)
        self.assertEqual(0, self.cloud.count('create'))
