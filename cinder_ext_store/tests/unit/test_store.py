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

"""The store facade: loading, configuration, locations, add, get, delete."""

import errno
import gc
import hashlib
from importlib import metadata
import io
import json
import os
import threading
import time

from cinderclient import exceptions as cinder_exc
import ddt
import fixtures
from glance_store._drivers.cinder import store as intree
from glance_store import backend
from glance_store import exceptions
from glance_store import location
from glance_store import multi_backend
from keystoneauth1 import exceptions as ksa_exc
from oslo_concurrency import opts as concurrency_opts
from oslo_config import cfg
from oslo_config import fixture as config_fixture
from oslo_utils import units

from cinder_ext_store import errors
from cinder_ext_store import memory
from cinder_ext_store import ownership
from cinder_ext_store import reader
from cinder_ext_store import store as store_mod
from cinder_ext_store.tests.unit import base
from cinder_ext_store.tests.unit import fakes
from cinder_ext_store import upload_markers
from harness import images

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

    def test_incomplete_credentials(self):
        store = self.configured(cinder_store_user_name='glance')
        e = self.assertRaises(exceptions.BadStoreConfiguration,
                              store.configure_add)
        self.assertIn('service credentials are incomplete', str(e))

    def test_no_lock_path_is_refused_at_start(self):
        conf = self.make_conf()
        conf.clear_override('lock_path', group='oslo_concurrency')
        store = store_mod.Store(conf, backend=base.BACKEND)
        e = self.assertRaises(exceptions.BadStoreConfiguration,
                              store.configure_add)
        self.assertIn('[oslo_concurrency] lock_path', str(e))
        conf.register_opt(cfg.StrOpt('lock_path'), group='os_brick')
        conf.set_override('lock_path', self.tmp, group='os_brick')
        store.configure_add()  # os-brick's lock path serves too
        self.assertEqual(self.tmp, store.shares.dir.rsplit('/', 1)[0])

    def test_unknown_volume_type_warns(self):
        self.configured(cinder_volume_type='nope', **CREDS).configure_add()
        self.assertIn('cinder_volume_type nope does not exist',
                      self.log.output)

    def test_known_volume_type(self):
        self.configured(cinder_volume_type='fast', **CREDS).configure_add()
        self.assertNotIn('does not exist', self.log.output)
        self.assertEqual(1, self.cloud.count('volume_type_find'))

    def test_unwritable_lock_path_is_refused_at_start(self):
        blocker = os.path.join(self.tmp, 'a-file')
        open(blocker, 'w').close()
        conf = self.make_conf()
        conf.set_override('lock_path', os.path.join(blocker, 'lock'),
                          group='oslo_concurrency')
        store = store_mod.Store(conf, backend=base.BACKEND)
        e = self.assertRaises(exceptions.BadStoreConfiguration,
                              store.configure_add)
        self.assertIn('is not writable by this process', str(e))

    def test_privsep_problem_is_refused_at_start(self):
        store = self.configured()
        store.host = fakes.FakeHost()
        store.host.privsep_error = 'no helper'
        e = self.assertRaises(exceptions.BadStoreConfiguration,
                              store.configure_add)
        self.assertIn('no helper', str(e))

    def test_encrypted_volume_type_is_refused_at_start(self):
        self.cloud.admin = True  # only admins see a type's encryption
        self.cloud.encrypted_types['fast'] = 'luks'
        e = self.assertRaises(
            exceptions.BadStoreConfiguration,
            self.configured(cinder_volume_type='fast', **CREDS).configure_add)
        self.assertIn('volume type fast is encrypted (luks)', str(e))
        self.assertIn('plaintext over the LUKS header', str(e))

    def test_encrypted_volume_refused_at_upload(self):
        # Without admin the type's encryption is invisible at start-up; the
        # volume's own flag stops the upload before a byte is written.
        self.cloud.encrypted_types['fast'] = 'luks'
        store = self.configured(cinder_volume_type='fast', **CREDS)
        store.configure_add()
        store.host = self.host
        e = self.assertRaises(exceptions.BackendException, self.add,
                              base.payload(1000), store=store)
        self.assertIn('is encrypted', str(e))
        self.assertEqual(0, self.cloud.count('attachment_create'))
        self.assertNothingLeft()

    def test_volume_type_check_failure_does_not_crash(self):
        self.cloud.fail('volume_type_find', ConnectionError('down'))
        self.configured(cinder_volume_type='fast', **CREDS).configure_add()
        self.assertIn('could not check volume type fast', self.log.output)

    def test_no_credentials_skips_check(self):
        self.configured(cinder_volume_type='fast').configure_add()
        self.assertEqual(0, self.cloud.count('volume_type_find'))
        self.assertIn('cannot check volume type', self.log.output)


class LoadingTestCase(base.TestCase):

    def setUp(self):
        super(LoadingTestCase, self).setUp()
        # glance_store keeps its scheme maps in module globals.
        for name in ('SCHEME_TO_CLS_MAP', 'SCHEME_TO_CLS_BACKEND_MAP'):
            self.useFixture(fixtures.MonkeyPatch(
                'glance_store.location.%s' % name, {}))


class TestEntryPoints(base.TestCase):

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
        # As Glance's config has it (readers share state there).
        for group, opts in concurrency_opts.list_opts():
            try:
                self.conf.register_opts(opts, group=group)
            except cfg.DuplicateOptError:
                pass
        self.conf.set_override('lock_path', self.useFixture(
            fixtures.TempDir()).path, group='oslo_concurrency')

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


@ddt.ddt
class TestAdd(base.StoreTestCase):

    @ddt.data(1, 1000, 256 * units.Ki, 3 * units.Mi + 17)
    def test_known_size_bytes_hashes_and_metadata(self, size):
        data = base.payload(size)
        uri, written, md5, multihash, meta = self.add(data)

        vid = self.volume_id(uri)
        self.assertEqual('cinder://images/%s' % vid, uri)
        self.assertEqual(size, written)
        self.assertEqual(hashlib.md5(data).hexdigest(), md5)
        self.assertEqual(hashlib.sha512(data).hexdigest(), multihash)
        self.assertEqual({'store': 'images'}, meta)
        vol = self.assertStored(uri, data)
        self.assertEqual(-(-size // base.TEST_GIB), vol['size'])
        self.assertEqual('image-9f1c7b0e-image', vol['name'])
        self.assertEqual('9f1c7b0e-image', vol['metadata']['glance_image_id'])
        self.assertEqual(self.context.project_id,
                         vol['metadata']['image_owner'])
        self.assertEqual(0, self.cloud.count('extend'))

    def test_admin_upload_records_the_images_owner(self):
        # An admin uploading into another project's image: Cinder's clone
        # check wants the image's owner, not the admin's project.
        seen = []

        def image_owner(context, image_id):
            seen.append(image_id)
            return 'owner-project'
        self.patch(ownership, '_glance_owner', image_owner)
        self.context = base.Context('admin-project', is_admin=True)
        vol = self.assertStored(self.add(b'x' * 100)[0], b'x' * 100)
        self.assertEqual('owner-project', vol['metadata']['image_owner'])
        self.assertEqual(['9f1c7b0e-image'], seen)

    def test_attachment_uses_microversion_and_mode(self):
        self.add(base.payload(1000))
        create = [c for c in self.cloud.calls if c[0] == 'attachment_create']
        self.assertEqual('3.54', create[0][1].get_string())
        self.assertEqual('rw', create[0][3])
        self.assertEqual(1, self.cloud.count('attachment_complete'))

    def test_volume_type(self):
        conf = self.make_conf(cinder_volume_type='fast')
        uri = self.add(b'x' * 10, store=self.make_store(conf))[0]
        self.assertEqual('fast',
                         self.cloud.volumes[self.volume_id(uri)]
                         ['volume_type'])

    def test_file_like_device_is_flushed(self):
        # os-brick hands RBD volumes out as file-like handles.
        self.host.handles = True
        data = base.payload(2 * units.Mi + 5)
        uri = self.add(data)[0]
        self.assertStored(uri, data)
        self.assertIn('flush', self.host.calls)

    def test_flush_failure_fails_upload(self):
        self.host.handles = True
        self.host.fail('flush', IOError('flush failed'))
        self.assertRaises(exceptions.BackendException,
                          self.add, base.payload(1000))
        self.assertNothingLeft()

    def test_verifier_sees_every_byte(self):
        seen = []

        class Verifier(object):
            def update(self, chunk):
                seen.append(chunk)

        data = base.payload(units.Mi + 3)
        self.store.add('img', io.BytesIO(data), len(data), 'sha512',
                       context=self.context, verifier=Verifier())
        self.assertEqual(data, b''.join(seen))

    def test_back_compat_four_tuple(self):
        result = self.store.add('img', io.BytesIO(b'abc'), 3)
        self.assertEqual(4, len(result))
        self.assertEqual(hashlib.md5(b'abc').hexdigest(), result[2])

    def test_unknown_hashing_algo(self):
        self.assertRaises(exceptions.UnknownHashingAlgo, self.store.add,
                          'img', io.BytesIO(b'abc'), 3, 'nope')
        self.assertNothingLeft()

    def test_more_data_than_declared(self):
        data = base.payload(units.Mi)
        e = self.assertRaises(exceptions.Invalid, self.add, data,
                              size=len(data) - 1)
        self.assertIn('more data', str(e))
        self.assertNothingLeft()

    def test_less_data_than_declared(self):
        data = base.payload(units.Mi)
        e = self.assertRaises(exceptions.Invalid, self.add, data,
                              size=len(data) + 1)
        self.assertIn('ended after %d bytes' % len(data), str(e))
        self.assertNothingLeft()
        # The user's mistake: one INFO line and the aborted report, no
        # error of the store's.
        self.assertIn('stopped by its data stream (Invalid: Image ended',
                      self.log.output)
        self.assertNotIn('failed; deleting the volume', self.log.output)
        self.assertIn('result=aborted', self.log.output)

    def test_client_disconnects_mid_stream(self):
        data = base.payload(2 * units.Mi)
        src = images.FailsAfter(io.BytesIO(data), units.Mi)
        e = self.assertRaises(IOError, self.add, data, source=src)
        self.assertEqual('client disconnected', str(e))
        self.assertNothingLeft()

    def test_create_ends_in_error(self):
        self.cloud.create_ends_in = 'error'
        e = self.assertRaises(exceptions.BackendException, self.add, b'abc')
        self.assertIn('could not create volume', str(e))
        self.assertIn('(status error)', str(e))
        self.assertNothingLeft()

    def test_create_times_out(self):
        # Stuck 'creating': only force-delete removes it, which Cinder
        # allows admins only.
        self.cloud.admin = True
        self.cloud.transition_polls = 10 ** 6
        self.store.cinder.timeout = 0.1
        e = self.assertRaises(exceptions.BackendException, self.add, b'abc')
        self.assertIn('Timed out', str(e))
        self.assertIn("waiting for creation of volume", str(e))
        self.assertIn("'creating'", str(e))
        self.assertNothingLeft()

    def test_create_times_out_without_admin(self):
        self.cloud.transition_polls = 10 ** 6
        self.store.cinder.timeout = 0.1
        self.assertRaises(exceptions.BackendException, self.add, b'abc')
        # Left 'creating' (reconcile takes it past its grace period), and
        # said so.
        self.assertEqual(['creating'], [v['status'] for v in
                                        self.cloud.volumes.values()])
        self.assertIn('it is left behind', self.log.output)

    def test_quota_exceeded_is_storage_full(self):
        self.cloud.quota_gib = 1
        self.assertRaises(exceptions.StorageFull, self.add,
                          base.payload(base.TEST_GIB + 1))
        self.assertNothingLeft()

    @ddt.data((errno.ENOSPC, exceptions.StorageFull),
              (errno.EFBIG, exceptions.StorageFull),
              (errno.EACCES, exceptions.StorageWriteDenied),
              (errno.EROFS, exceptions.StorageWriteDenied),
              (errno.EIO, exceptions.BackendException))
    @ddt.unpack
    def test_write_errors_are_translated(self, err, expected):
        self.host.handles = True
        self.host.fail('write', OSError(err, os.strerror(err)))
        e = self.assertRaises(expected, self.add, base.payload(1000))
        self.assertIn('writing to volume', str(e))
        self.assertNothingLeft()

    def test_unopenable_device(self):
        self.host.device_override = self.tmp  # a directory: EISDIR
        self.assertRaises(exceptions.BackendException, self.add, b'abc')
        self.assertNothingLeft()

    @ddt.data('attachment_create', 'attachment_complete', 'set_metadata',
              'update_readonly_flag')
    def test_cinder_failure_cleans_up(self, call):
        # Failing on every try (1 + cinder_http_retries).
        self.cloud.fail(call, cinder_exc.ClientException(500, 'boom'), 4)
        # set_metadata only runs for unknown sizes.
        size = 0 if call == 'set_metadata' else None
        e = self.assertRaises(exceptions.BackendException, self.add,
                              base.payload(1000), size=size)
        self.assertIn('boom', str(e))
        self.assertNothingLeft()

    def test_attachment_delete_failure_cleans_up(self):
        # The first delete fails on the success path; the cleanup retries.
        self.cloud.fail('attachment_delete',
                        cinder_exc.ClientException(500, 'detach boom'), 4)
        e = self.assertRaises(exceptions.BackendException, self.add,
                              base.payload(1000))
        self.assertIn('detach boom', str(e))
        self.assertNothingLeft()

    @ddt.data('connector', 'connect', 'disconnect')
    def test_host_failure_cleans_up(self, call):
        self.host.fail(call, OSError('%s failed' % call))
        e = self.assertRaises(exceptions.BackendException, self.add,
                              base.payload(1000))
        self.assertIn('%s failed' % call, str(e))
        self.assertIn('volume', str(e))
        self.assertNothingLeft()

    @ddt.data('create', 'attachment_create', 'attachment_complete',
              'attachment_delete', 'get', 'update_readonly_flag')
    def test_transient_cinder_failure_is_retried(self, call):
        self.cloud.fail(call, cinder_exc.ClientException(503, 'busy'))
        data = base.payload(1000)
        uri = self.add(data)[0]
        self.assertStored(uri, data)
        self.assertEqual(1, len(self.cloud.volumes))
        self.assertEqual({}, self.cloud.attachments)

    @ddt.data('create', 'attachment_create', 'attachment_delete')
    def test_lost_answer_duplicates_nothing(self, call):
        self.cloud.lose_answer(call, ksa_exc.ConnectFailure('reset'))
        data = base.payload(1000)
        uri = self.add(data)[0]
        self.assertStored(uri, data)
        self.assertEqual([self.volume_id(uri)], list(self.cloud.volumes))
        self.assertEqual({}, self.cloud.attachments)

    @ddt.data(KeyboardInterrupt, SystemExit)
    def test_interrupt_while_creating_deletes_the_volume(self, interrupt):
        self.cloud.transition_polls = 3
        api = self.store.cinder.api()
        interrupts = [interrupt()]

        def interrupted(seconds):
            if interrupts:
                raise interrupts.pop()
        api.tuning = api.tuning.replace(sleep=interrupted)
        self.store.cinder.api = lambda context=None: api
        self.assertRaises(interrupt, self.add, base.payload(1000))
        self.assertEqual(0, self.cloud.count('force_delete'))
        self.assertNothingLeft()

    def test_declared_size_above_cap_creates_nothing(self):
        store = self.make_store(self.make_conf(
            cinder_ext_image_size_cap=4096))
        e = self.assertRaises(exceptions.StorageFull, self.add,
                              base.payload(5000), store=store)
        self.assertIn('declares 5000 bytes, more than the 4096 bytes',
                      str(e))
        self.assertEqual(0, self.cloud.count('create'))

    def test_unknown_size_stops_at_cap(self):
        cap = base.TEST_GIB + 10
        store = self.make_store(self.make_conf(cinder_ext_image_size_cap=cap))
        e = self.assertRaises(exceptions.StorageFull, self.add,
                              base.payload(2 * base.TEST_GIB), size=0,
                              store=store)
        self.assertIn('the most this store accepts', str(e))
        self.assertNothingLeft()

    def test_cap_follows_glance(self):
        conf = self.make_conf()
        conf.register_opt(cfg.IntOpt('image_size_cap', default=3000))
        store = self.make_store(conf)
        self.assertRaises(exceptions.StorageFull, self.add,
                          base.payload(3001), store=store)
        data = base.payload(3000)
        self.assertStored(self.add(data, store=store)[0], data)

    def slow_upload(self, data, size=None):
        """Upload ``data`` at 0.4 s of a faked clock per read.

        :returns: (the store, which logs progress each second; its URI;
            the clock, a one-item list)
        """
        store = self.make_store(self.make_conf(
            cinder_ext_progress_interval=1))
        clock = [1000.0]
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.stats.time.monotonic', lambda: clock[0]))

        class Slow(io.BytesIO):
            def read(self, n=-1):
                clock[0] += 0.4
                return super(Slow, self).read(n)
        uri = self.add(data, size=size, source=Slow(data), store=store)[0]
        return store, uri, clock

    def progress_lines(self, operation):
        return [line for line in self.log.output.splitlines()
                if 'cinder_ext progress %s' % operation in line]

    def test_progress_lines(self):
        data = base.payload(100000)
        store, uri, clock = self.slow_upload(data)
        lines = self.progress_lines('add')
        self.assertGreater(len(lines), 3)
        self.assertIn('phase=copy', lines[-1])
        self.assertIn('volume=%s' % self.volume_id(uri), lines[-1])
        self.assertRegex(lines[-1], r'bytes=\d+ seconds=[\d.]+ mib_per_s=')
        # The size was declared: how far, and how long still.
        self.assertRegex(lines[-1], r' total=100000 percent=\d+ eta_s=\d+$')
        # A read names its phase and its length too.
        it, length = store.get(self.location(uri), context=self.context)
        clock[0] += 5  # a slow consumer
        self.assertEqual(data, b''.join(it))
        lines = self.progress_lines('get')
        self.assertTrue(lines)
        self.assertIn('phase=read', lines[-1])
        self.assertIn(' total=%d percent=' % length, lines[-1])

    def test_chunked_upload_progress_has_no_total(self):
        self.slow_upload(base.payload(50000), size=0)
        lines = self.progress_lines('add')
        self.assertTrue(lines)
        self.assertNotIn('total=', lines[-1])

    def test_refused_delete_falls_back_to_force_delete(self):
        self.cloud.admin = True  # the only ones Cinder lets force-delete
        self.cloud.fail('attachment_complete',
                        cinder_exc.ClientException(400, 'original'))
        self.cloud.fail('delete', cinder_exc.BadRequest(400, 'refused'), 2)
        e = self.assertRaises(exceptions.BackendException, self.add,
                              base.payload(1000))
        self.assertIn('original', str(e))
        self.assertEqual(1, self.cloud.count('force_delete'))
        self.assertNothingLeft()

    def test_failed_cleanup_keeps_original_error(self):
        self.cloud.fail('attachment_complete',
                        cinder_exc.BadRequest(400, 'original'))
        self.cloud.fail('delete', cinder_exc.BadRequest(400, 'second'), 2)
        self.cloud.fail('force_delete', cinder_exc.Forbidden(403, 'third'))
        e = self.assertRaises(exceptions.BackendException, self.add,
                              base.payload(1000))
        self.assertIn('original', str(e))
        self.assertIn('delete it by hand', self.log.output)
        self.assertEqual(1, len(self.cloud.volumes))

    def test_failed_marker_write_deletes_the_volume(self):
        # Nobody could clean up after an upload without its marker.
        real = upload_markers.UploadMarkers.uploading
        calls = []

        def full_disk(markers, volume_id, attachment=None):
            calls.append(volume_id)
            if len(calls) == 1:
                raise OSError(errno.ENOSPC, 'No space left on device')
            return real(markers, volume_id, attachment)

        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.upload_markers.UploadMarkers.uploading',
            full_disk))
        self.assertRaises(OSError, self.add, base.payload(1000))
        self.assertNothingLeft()
        self.assertEqual([], self.store.shares.records.names('.upload'))

    def test_marker_never_names_a_detached_attachment(self):
        # Offline growth: detach, extend, re-attach. While detached the
        # marker names no attachment (a dead upload's record must not make
        # reconcile disconnect a device path reused by another volume).
        store = self.make_store(self.make_conf(
            cinder_do_extend_attached=False))
        marker = os.path.join(store.shares.dir, '%s.upload')
        seen = []
        real = self.cloud.extend

        def extend(version, volume_id, new_size):
            with open(marker % volume_id) as f:
                seen.append(json.load(f).get('attachment_id'))
            return real(version, volume_id, new_size)

        self.cloud.extend = extend
        data = base.payload(3 * base.TEST_GIB + 5)
        uri = self.add(data, size=0, store=store)[0]
        self.assertStored(uri, data)
        self.assertTrue(seen)
        self.assertEqual([None] * len(seen), seen)


class TestSharedVolume(base.StoreTestCase):
    """Two images name one volume: deleting one keeps the other's data."""

    def setUp(self):
        super(TestSharedVolume, self).setUp()
        self.data = base.payload(5000)
        self.uri = self.add(self.data, image_id='first')[0]
        self.vid = self.volume_id(self.uri)
        self.rows = []
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_ext_store.ownership.glance_locations',
            lambda volume_id: [r for r in self.rows]))

    def test_delete_keeps_a_volume_another_image_names(self):
        # An admin added the first image's location to a second image.
        self.rows[:] = [('first', True, 'active'), ('second', True, 'active')]
        self.store.delete(self.location(self.uri), context=self.context)
        self.assertIn(self.vid, self.cloud.volumes)
        self.assertIn('images first, second name it', self.log.output)
        self.assertEqual(self.data, self.read_all(self.uri))
        # Glance drops the first image's location; the last one deletes.
        self.rows[:] = [('second', True, 'active')]
        self.store.delete(self.location(self.uri), context=self.context)
        self.cloud.finish_transitions()
        self.assertNotIn(self.vid, self.cloud.volumes)

    def test_scrubber_keeps_a_volume_another_image_names(self):
        # Delayed delete: the image being scrubbed is deleted already, its
        # location pending_delete.
        self.rows[:] = [('first', False, 'pending_delete'),
                        ('second', True, 'active')]
        self.store.delete(self.location(self.uri), context=self.context)
        self.assertIn(self.vid, self.cloud.volumes)
        self.rows[:] = [('first', False, 'pending_delete')]
        self.store.delete(self.location(self.uri), context=self.context)
        self.cloud.finish_transitions()
        self.assertNotIn(self.vid, self.cloud.volumes)

    def test_failed_get_names_image_and_volume(self):
        self.rows[:] = [('second', True, 'active')]
        self.cloud.volumes.pop(self.vid)
        self.assertRaises(exceptions.NotFound, self.store.get,
                          self.location(self.uri), context=self.context)
        self.assertIn('cinder_ext get image=second volume=%s' % self.vid,
                      self.log.output)
        self.assertIn('result=failed', self.log.output)


@ddt.ddt
class TestRead(base.StoreTestCase):

    def setUp(self):
        super(TestRead, self).setUp()
        self.data = base.payload(3 * units.Mi + 11)
        self.uri = self.add(self.data)[0]
        self.vid = self.volume_id(self.uri)

    def test_full_read(self):
        self.assertEqual(self.data, self.read_all(self.uri))
        self.assertEqual({}, self.cloud.attachments)
        self.assertEqual({}, self.host.connected)
        ro = [c for c in self.cloud.calls if c[0] == 'attachment_create']
        self.assertEqual('ro', ro[-1][3])

    def test_one_cinder_lookup_per_read(self):
        # The size the lent device must have comes from the lookup: no
        # second GET between attachment create and complete.
        before = self.cloud.count('get')
        self.assertEqual(self.data, self.read_all(self.uri))
        self.assertEqual(1, self.cloud.count('get') - before)
        self.assertEqual(
            [self.cloud.volumes[self.vid]['size'] * base.TEST_GIB],
            self.host.lent_sizes[-1:])

    def test_read_through_handle(self):
        self.host.handles = True
        self.assertEqual(self.data, self.read_all(self.uri))

    @ddt.data((0, 10), (5, 1000), (units.Mi - 3, units.Mi + 7),
              (3 * units.Mi, 11), (3 * units.Mi, 10 ** 9))
    @ddt.unpack
    def test_offset_and_length(self, offset, length):
        got = self.read_all(self.uri, offset=offset, chunk_size=length)
        self.assertEqual(self.data[offset:offset + length], got)

    def test_offset_past_end(self):
        self.assertRaises(exceptions.BackendException, self.store.get,
                          self.location(self.uri), offset=len(self.data) + 1,
                          context=self.context)

    def test_short_volume_raises(self):
        # The device (4 "GiB") ends before the recorded image size.
        end = 4 * base.TEST_GIB
        self.cloud.volumes[self.vid]['metadata']['image_size'] = str(end + 5)
        it, _length = self.store.get(self.location(self.uri),
                                     context=self.context)
        e = self.assertRaises(exceptions.BackendException,
                              lambda: len(b''.join(it)))
        self.assertIn('ended at byte %d' % end, str(e))
        self.assertEqual({}, self.cloud.attachments)
        self.assertEqual({}, self.host.connected)

    def test_released_before_last_chunk(self):
        # A client holding every byte may delete the image at once.
        it, length = self.store.get(self.location(self.uri),
                                    context=self.context)
        got = 0
        while got < length:
            got += len(next(it))
        self.assertEqual({}, self.cloud.attachments)
        self.assertEqual({}, self.host.connected)
        self.assertRaises(StopIteration, next, it)

    def test_zero_length_read_attaches_nothing_for_long(self):
        it, length = self.store.get(self.location(self.uri),
                                    offset=len(self.data),
                                    context=self.context)
        self.assertEqual(0, length)
        self.assertEqual({}, self.cloud.attachments)
        self.assertEqual([], list(it))

    def test_delete_while_reading_is_refused(self):
        # Glance answers 409; the reader is not cut off.
        it, _ = self.store.get(self.location(self.uri), context=self.context)
        first = next(it)
        self.assertRaises(exceptions.InUseByStore, self.store.delete,
                          self.location(self.uri), context=self.context)
        self.assertEqual(self.data, first + b''.join(it))
        self.store.delete(self.location(self.uri), context=self.context)
        self.assertNothingLeft()

    def test_delete_waits_for_a_reader_that_is_leaving(self):
        # Glance's cancelled hash pass: the reader stopped, and is let go
        # a moment after Glance asked for the delete.
        it, _ = self.store.get(self.location(self.uri), context=self.context)
        next(it)
        waits = []

        def sleep(seconds):
            waits.append(seconds)
            if len(waits) == 3:
                it.close()
        self.store.tuning = self.store.tuning.replace(sleep=sleep)
        self.store.delete(self.location(self.uri), context=self.context)
        self.assertEqual(3, len(waits))
        self.assertNothingLeft()

    def test_early_close_releases(self):
        before = set(threading.enumerate())
        it, _ = self.store.get(self.location(self.uri), context=self.context)
        next(it)
        self.assertEqual(1, len(self.cloud.attachments))
        it.close()
        self.assertEqual({}, self.cloud.attachments)
        self.assertEqual({}, self.host.connected)
        # The consumer stopped (a client went away, Glance cancelled its
        # hash pass): an aborted read, not a failed one.
        self.assertIn('result=aborted', self.log.output)
        self.assertIn('closed by its consumer', self.log.output)
        # The read-ahead stopped before the device was closed (the
        # process's thread for dropped readers stays).
        self.assertEqual(set(), {
            t for t in set(threading.enumerate()) - before
            if t.name != 'cinder-ext-orphans'})

    def released_by_the_orphans_thread(self, seconds=10):
        """Whether the reader's thread released everything in time."""
        deadline = time.monotonic() + seconds
        while self.cloud.attachments or self.host.connected:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def test_garbage_collection_releases(self):
        it, _ = self.store.get(self.location(self.uri), context=self.context)
        next(it)
        del it
        gc.collect()
        self.assertTrue(self.released_by_the_orphans_thread())
        self.assertIn('result=aborted', self.log.output)

    def test_garbage_collection_inside_the_share_lock(self):
        # The collector may run a dropped reader's __del__ in a thread that
        # holds the lock the release takes: releasing there would wait for
        # itself forever (CI hung on it). The release waits for the lock
        # instead, in the orphans' thread.
        it, _ = self.store.get(self.location(self.uri), context=self.context)
        next(it)
        cycle = [it]
        cycle.append(cycle)  # only the collector frees it
        del it, cycle
        with self.store.shares.lock(self.vid):
            gc.collect()
            time.sleep(3 * reader.ORPHANS.interval)
            self.assertEqual(1, len(self.cloud.attachments))
        self.assertTrue(self.released_by_the_orphans_thread())

    def test_attach_failure_releases(self):
        self.host.fail('connect', OSError('no path'))
        self.assertRaises(exceptions.BackendException, self.store.get,
                          self.location(self.uri),
                          context=self.context)
        self.assertEqual({}, self.cloud.attachments)

    def hash_pass(self, retries=3):
        """Glance 33's hash pass over a new location, as it reads.

        It retries a failed read only on IOError (``http_retries``
        attempts); any other error leaves the image without its hashes.
        """
        for attempt in range(1, retries + 1):
            digest = hashlib.sha512()
            try:
                it, _length = self.store.get(self.location(self.uri),
                                             context=self.context)
                for chunk in it:
                    digest.update(chunk)
                return attempt, digest.hexdigest()
            except IOError:
                if attempt == retries:
                    raise

    def test_hash_pass_retries_a_failed_attach(self):
        self.host.fail('connect', OSError('no path'))
        self.assertEqual((2, hashlib.sha512(self.data).hexdigest()),
                         self.hash_pass())
        self.assertEqual({}, self.cloud.attachments)

    def test_hash_pass_retries_a_failed_read(self):
        self.host.handles = True
        self.host.fail('read', OSError('rbd: I/O error'))
        self.assertEqual((2, hashlib.sha512(self.data).hexdigest()),
                         self.hash_pass())
        self.assertEqual({}, self.cloud.attachments)

    def test_hash_pass_retries_a_short_volume_then_fails(self):
        # Never a wrong hash: every attempt fails the same way.
        self.cloud.volumes[self.vid]['metadata']['image_size'] = str(
            4 * base.TEST_GIB + 5)
        e = self.assertRaises(IOError, self.hash_pass)
        self.assertIsInstance(e, exceptions.BackendException)
        self.assertIn('ended at byte', str(e))
        self.assertEqual({}, self.cloud.attachments)

    def test_missing_volume(self):
        uri = 'cinder://images/6f1e3a52-8d7b-4b8e-9d4e-2a6c1f0b9a11'
        self.assertRaises(exceptions.NotFound, self.store.get,
                          self.location(uri), context=self.context)

    def test_volume_of_another_image(self):
        loc = self.location(self.uri, image_id='another-image')
        self.assertRaises(exceptions.NotFound, self.store.get, loc,
                          context=self.context)
        self.assertRaises(exceptions.NotFound, self.store.delete, loc,
                          context=self.context)
        self.assertIn(self.vid, self.cloud.volumes)

    def test_another_projects_volume_is_not_registered(self):
        # Glance asks get_size of every location it adds: a user pointing
        # an image at another project's image volume gets "invalid
        # location" (HTTP 400); an admin may.
        loc = self.location(self.uri)
        self.assertRaises(exceptions.NotFound, self.store.get_size, loc,
                          context=base.Context('another-project'))
        self.assertEqual(len(self.data), self.store.get_size(
            loc, context=base.Context('another-project', is_admin=True)))
        # Reading is not limited by owner: public images are read by all.
        self.assertEqual(self.data, b''.join(self.store.get(
            loc, context=base.Context('another-project'))[0]))

    def test_another_projects_volume_is_not_deleted(self):
        loc = self.location(self.uri)
        self.assertRaises(exceptions.Forbidden, self.store.delete, loc,
                          context=base.Context('another-project'))
        self.assertEqual('available', self.cloud.volumes[self.vid]['status'])
        self.store.delete(loc, context=base.Context('another-project',
                                                    is_admin=True))
        self.assertEqual('deleting', self.cloud.volumes[self.vid]['status'])

    def _cinder_volume(self, name, metadata):
        """A volume made outside the store, holding self.data."""
        api = self.store.cinder.api()
        vid = api.create(4, name, metadata).id
        with open(self.cloud.path(vid), 'r+b') as f:
            f.write(self.data)
        return 'cinder://images/%s' % vid

    def test_volume_registered_by_cinder_is_read_whole(self):
        # Cinder's upload-to-image: image_owner, no image_size, and the
        # location is registered before glance_image_id is written.
        uri = self._cinder_volume('image-from-cinder',
                                  {'image_owner': self.context.project_id})
        self.assertEqual(4 * base.TEST_GIB, self.store.get_size(
            self.location(uri), context=self.context))
        data = self.read_all(uri)
        self.assertEqual(self.data, data[:len(self.data)])
        self.assertEqual(bytes(4 * base.TEST_GIB - len(self.data)),
                         data[len(self.data):])

    def test_volume_that_is_no_image_volume_is_refused(self):
        uri = self._cinder_volume('someones-data', {})
        vid = self.volume_id(uri)
        for call in (self.store.get, self.store.get_size, self.store.delete):
            self.assertRaises(exceptions.NotFound, call, self.location(uri),
                              context=base.Context(is_admin=True))
        self.assertEqual('available', self.cloud.volumes[vid]['status'])

    def test_get_size(self):
        self.assertEqual(len(self.data), self.store.get_size(
            self.location(self.uri), context=self.context))
        self.cloud.volumes[self.vid]['metadata'].pop('image_size')
        self.assertEqual(4 * base.TEST_GIB, self.store.get_size(
            self.location(self.uri), context=self.context))
        self.cloud.volumes[self.vid]['metadata']['image_size'] = 'junk'
        self.assertEqual(4 * base.TEST_GIB, self.store.get_size(
            self.location(self.uri), context=self.context))

    def test_empty_image_reads_back_empty(self):
        # Glance passes 0 for a chunked upload too: the volume grows from
        # its minimum, nothing is written.
        uri, written = self.add(b'', size=0)[:2]
        self.assertEqual(0, written)
        self.assertEqual('0', self.cloud.volumes[self.volume_id(uri)][
            'metadata']['image_size'])
        self.assertEqual(0, self.store.get_size(self.location(uri),
                                                context=self.context))
        it, length = self.store.get(self.location(uri), context=self.context)
        self.assertEqual((0, b''), (length, b''.join(it)))

    def test_delete(self):
        self.store.delete(self.location(self.uri), context=self.context)
        # Cinder deletes in the background: the store does not wait.
        self.assertEqual('deleting', self.cloud.volumes[self.vid]['status'])
        self.assertNothingLeft()

    def test_delete_missing(self):
        self.store.delete(self.location(self.uri), context=self.context)
        self.cloud.finish_transitions()
        self.assertRaises(exceptions.NotFound, self.store.delete,
                          self.location(self.uri), context=self.context)

    def test_only_attached_attachments_are_listed(self):
        api = self.store.cinder.api()
        att = api.attachment_create(self.vid, self.host.connector_properties(),
                                    'ro')
        self.assertEqual([], api.get(self.vid).attachments)
        api.attachment_complete(att['id'], self.vid)
        self.assertEqual([att['id']], [a['attachment_id'] for a in
                                       api.get(self.vid).attachments])
        api.attachment_delete(att['id'], self.vid)

    def test_read_only_flag_needs_an_available_volume(self):
        # The store sets it after detaching; Cinder refuses it before.
        api = self.store.cinder.api()
        att = api.attachment_create(self.vid, self.host.connector_properties(),
                                    'ro')
        api.attachment_complete(att['id'], self.vid)
        e = self.assertRaises(exceptions.BackendException, api.set_readonly,
                              self.vid)
        self.assertIn('must be available', str(e))
        api.attachment_delete(att['id'], self.vid)
        api.set_readonly(self.vid)

    def test_delete_releases_what_dead_readers_left(self):
        it, _ = self.store.get(self.location(self.uri), context=self.context)
        next(it)
        # The reading process died (SIGKILL): its count stays in the state.
        share = os.path.join(self.store.shares.dir, '%s.json' % self.vid)
        with open(share) as f:
            state = json.load(f)
        state['readers'] = {'999999999': {'start': 1, 'count': 1}}
        with open(share, 'w') as f:
            json.dump(state, f)
        it._lease = None  # the dead process never releases
        it._chunks.close()  # no threads of it stay here
        self.store.delete(self.location(self.uri), context=self.context)
        self.assertIn('reclaiming 1 reference(s) of dead process 999999999',
                      self.log.output)
        self.assertNothingLeft()
        self.assertFalse(os.path.exists(share))

    def test_image_association(self):
        self.assertTrue(self.store.is_image_associated_with_store(
            self.context, self.vid))
        store = self.make_store(self.make_conf(cinder_volume_type='fast'))
        self.assertFalse(store.is_image_associated_with_store(
            self.context, self.vid))
        self.assertFalse(self.store.is_image_associated_with_store(
            self.context, '6f1e3a52-8d7b-4b8e-9d4e-2a6c1f0b9a11'))


class TestTransferMemory(base.StoreTestCase):
    """cinder_ext_transfer_memory_mb bounds what transfers hold at once."""

    def setUp(self):
        super(TestTransferMemory, self).setUp()
        self.conf = self.make_conf(cinder_ext_transfer_memory_mb=1)
        self.store = self.make_store()
        self.store.tuning = base.TUNING.replace(memory_wait=0.1)
        self.budget = memory.process_budget(units.Mi)
        self.data = base.payload(units.Mi + 5)

    def test_a_download_holds_its_read_ahead_until_it_ends(self):
        uri = self.add(self.data)[0]
        self.assertEqual(0, self.budget.used)
        it, _length = self.store.get(self.location(uri),
                                     context=self.context)
        held = self.budget.used
        self.assertGreaterEqual(held, self.store.READ_CHUNKSIZE)
        self.assertEqual(self.data, b''.join(it))
        self.assertEqual(0, self.budget.used)

    def test_a_download_without_room_is_busy_and_lets_go(self):
        uri = self.add(self.data)[0]
        with self.budget.reserve(units.Mi, 1, time.monotonic):
            self.assertRaises(errors.Busy, self.store.get,
                              self.location(uri), context=self.context)
            self.assertEqual({}, self.cloud.attachments)
            self.assertEqual({}, self.host.connected)
        self.assertEqual(self.data, self.read_all(uri))

    def test_an_upload_waits_for_room(self):
        held = self.budget.reserve(units.Mi, 1, time.monotonic)
        timer = threading.Timer(0.05, held.release)
        timer.start()
        self.addCleanup(timer.cancel)
        self.store.tuning = base.TUNING.replace(memory_wait=5)
        uri = self.add(self.data)[0]
        self.assertStored(uri, self.data)
        self.assertRegex(self.log.output, r'result=ok .*phases=[^ ]*memory:')
        self.assertEqual(0, self.budget.used)

    def test_an_upload_without_room_creates_nothing(self):
        with self.budget.reserve(units.Mi, 1, time.monotonic):
            self.assertRaises(errors.Busy, self.add, self.data)
        self.assertNothingLeft()
        self.assertEqual([], [c for c in self.cloud.calls
                              if c[0] == 'create'])

    def test_zero_lifts_the_bound(self):
        self.conf = self.make_conf(cinder_ext_transfer_memory_mb=0)
        store = self.make_store()
        memory._PROCESS = None
        self.assertStored(self.add(self.data, store=store)[0], self.data)
        self.assertIsNone(memory._PROCESS)
