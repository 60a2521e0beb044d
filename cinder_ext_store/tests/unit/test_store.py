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

import errno
import gc
import hashlib
import io
import os

from cinderclient import exceptions as cinder_exc
import ddt
from glance_store import exceptions
from oslo_utils import units

from cinder_ext_store.tests.unit import base


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

    def test_client_disconnects_mid_stream(self):
        data = base.payload(2 * units.Mi)
        src = base.BrokenSource(data, units.Mi)
        e = self.assertRaises(IOError, self.add, data, source=src)
        self.assertEqual('client disconnected', str(e))
        self.assertNothingLeft()

    def test_create_ends_in_error(self):
        self.cloud.create_ends_in = 'error'
        e = self.assertRaises(exceptions.BackendException, self.add, b'abc')
        self.assertIn("is 'error' after creation, expected 'available'",
                      str(e))
        self.assertNothingLeft()

    def test_create_times_out(self):
        self.cloud.transition_polls = 10 ** 6
        self.store.cinder.timeout = 0.1
        e = self.assertRaises(exceptions.BackendException, self.add, b'abc')
        self.assertIn('Timed out', str(e))
        self.assertIn("waiting for creation of volume", str(e))
        self.assertIn("'creating'", str(e))
        self.assertNothingLeft()

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
        self.cloud.fail(call, cinder_exc.ClientException(500, 'boom'))
        # set_metadata only runs for unknown sizes.
        size = 0 if call == 'set_metadata' else None
        e = self.assertRaises(exceptions.BackendException, self.add,
                              base.payload(1000), size=size)
        self.assertIn('boom', str(e))
        self.assertNothingLeft()

    def test_attachment_delete_failure_cleans_up(self):
        # The first delete fails on the success path; the cleanup retries.
        self.cloud.fail('attachment_delete',
                        cinder_exc.ClientException(500, 'detach boom'))
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

    def test_refused_delete_falls_back_to_force_delete(self):
        self.cloud.fail('attachment_complete',
                        cinder_exc.ClientException(500, 'original'))
        self.cloud.fail('delete', cinder_exc.BadRequest(400, 'refused'))
        e = self.assertRaises(exceptions.BackendException, self.add,
                              base.payload(1000))
        self.assertIn('original', str(e))
        self.assertEqual(1, self.cloud.count('force_delete'))
        self.assertNothingLeft()

    def test_failed_cleanup_keeps_original_error(self):
        self.cloud.fail('attachment_complete',
                        cinder_exc.ClientException(500, 'original'))
        self.cloud.fail('delete', cinder_exc.ClientException(500, 'second'))
        self.cloud.fail('force_delete', cinder_exc.Forbidden(403, 'third'))
        e = self.assertRaises(exceptions.BackendException, self.add,
                              base.payload(1000))
        self.assertIn('original', str(e))
        self.assertIn('delete it by hand', self.log.output)
        self.assertEqual(1, len(self.cloud.volumes))


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

    def test_delete_while_reader_releases(self):
        # The reader's attachment disappears between listing and deleting.
        it, _ = self.store.get(self.location(self.uri), context=self.context)
        next(it)
        real = self.cloud.attachment_delete

        def reader_wins(version, attachment_id):
            real(version, attachment_id)
            raise cinder_exc.NotFound(404, 'attachment not found')

        self.cloud.attachment_delete = reader_wins
        self.store.delete(self.location(self.uri), context=self.context)
        self.assertEqual({}, self.cloud.volumes)

    def test_early_close_releases(self):
        it, _ = self.store.get(self.location(self.uri), context=self.context)
        next(it)
        self.assertEqual(1, len(self.cloud.attachments))
        it.close()
        self.assertEqual({}, self.cloud.attachments)
        self.assertEqual({}, self.host.connected)

    def test_garbage_collection_releases(self):
        it, _ = self.store.get(self.location(self.uri), context=self.context)
        next(it)
        del it
        gc.collect()
        self.assertEqual({}, self.cloud.attachments)
        self.assertEqual({}, self.host.connected)

    def test_attach_failure_releases(self):
        self.host.fail('connect', OSError('no path'))
        self.assertRaises(exceptions.BackendException, self.store.get,
                          self.location(self.uri),
                          context=self.context)
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

    def test_get_size(self):
        self.assertEqual(len(self.data), self.store.get_size(
            self.location(self.uri), context=self.context))
        self.cloud.volumes[self.vid]['metadata'].pop('image_size')
        self.assertEqual(4 * base.TEST_GIB, self.store.get_size(
            self.location(self.uri), context=self.context))

    def test_delete(self):
        self.store.delete(self.location(self.uri), context=self.context)
        self.assertNothingLeft()

    def test_delete_missing(self):
        self.store.delete(self.location(self.uri), context=self.context)
        self.assertRaises(exceptions.NotFound, self.store.delete,
                          self.location(self.uri), context=self.context)

    def test_delete_detaches_leftover_attachment(self):
        # An interrupted read left an attachment of this host behind.
        it, _ = self.store.get(self.location(self.uri), context=self.context)
        next(it)
        self.store.delete(self.location(self.uri), context=self.context)
        self.assertEqual({}, self.cloud.volumes)
        self.assertEqual({}, self.cloud.attachments)

    def test_image_association(self):
        self.assertTrue(self.store.is_image_associated_with_store(
            self.context, self.vid))
        store = self.make_store(self.make_conf(cinder_volume_type='fast'))
        self.assertFalse(store.is_image_associated_with_store(
            self.context, self.vid))
        self.assertFalse(self.store.is_image_associated_with_store(
            self.context, '6f1e3a52-8d7b-4b8e-9d4e-2a6c1f0b9a11'))
