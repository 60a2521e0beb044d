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

import ddt
from glance_store import exceptions

from cinder_ext_store import ownership
from cinder_ext_store.tests.unit import base
from cinder_ext_store.tests.unit import fakes

OURS = 'aaaa0000'
THEIRS = 'bbbb1111'


def volume(name='image-img1', **metadata):
    return fakes.Volume(id='vol1', name=name, metadata=metadata)


@ddt.ddt
class TestImageVolume(base.TestCase):

    @ddt.data(
        # written by this store or the in-tree driver
        dict(glance_image_id='img1', image_owner=OURS, image_size='5'),
        # Cinder's upload-to-image, before it writes glance_image_id
        dict(image_owner=OURS),
        # an older writer without image_owner
        dict(glance_image_id='img1'))
    def test_image_volumes_pass(self, metadata):
        ownership.check_image_volume(volume(**metadata))
        ownership.check_image_volume(volume(**metadata), 'img1')

    @ddt.data(('my-data', dict(image_owner=OURS)),
              ('image-img1', {}),
              ('image-', dict(image_owner=OURS)),
              (None, dict(glance_image_id='img1')),
              ('image-img1', dict(glance_image_id='img2')))
    @ddt.unpack
    def test_other_volumes_refused(self, name, metadata):
        self.assertRaises(exceptions.NotFound, ownership.check_image_volume,
                          volume(name, **metadata))

    def test_location_of_another_image_refused(self):
        self.assertRaises(exceptions.NotFound, ownership.check_image_volume,
                          volume(image_owner=OURS), 'img2')


@ddt.ddt
class TestRequesterRules(base.TestCase):

    def test_owner_registers_and_deletes(self):
        ctx = base.Context(OURS)
        ownership.check_may_register(volume(image_owner=OURS), ctx)
        ownership.check_may_delete(volume(image_owner=OURS), ctx)

    def test_other_project_refused(self):
        ctx = base.Context(THEIRS)
        self.assertRaises(exceptions.NotFound, ownership.check_may_register,
                          volume(image_owner=OURS), ctx)
        self.assertRaises(exceptions.Forbidden, ownership.check_may_delete,
                          volume(image_owner=OURS), ctx)

    @ddt.data(base.Context(THEIRS, is_admin=True), None)
    def test_admin_and_no_request_allowed(self, ctx):
        ownership.check_may_register(volume(image_owner=OURS), ctx)
        ownership.check_may_delete(volume(image_owner=OURS), ctx)

    def test_service_registers_but_does_not_delete(self):
        # Cinder adds its locations with its service user's token.
        ctx = base.Context('service-project')
        ctx.roles = ['service']
        ownership.check_may_register(volume(image_owner=OURS), ctx)
        ctx = base.Context(THEIRS)
        ctx.roles, ctx.service_roles = ['member'], ['service']
        ownership.check_may_register(volume(image_owner=OURS), ctx)
        self.assertRaises(exceptions.Forbidden, ownership.check_may_delete,
                          volume(image_owner=OURS), ctx)

    def test_glance_knows_the_current_owner(self):
        # The image was given to another project after upload: its volume's
        # image_owner is stale, Glance's answer counts.
        def lookup(context, image_id):
            self.assertEqual('img1', image_id)
            return THEIRS
        ctx = base.Context(THEIRS)
        ownership.check_may_register(volume(image_owner=OURS), ctx, lookup)
        ownership.check_may_delete(volume(image_owner=OURS), ctx, lookup)
        ctx = base.Context(OURS)
        self.assertRaises(exceptions.Forbidden, ownership.check_may_delete,
                          volume(image_owner=OURS), ctx, lookup)

    def test_image_the_requester_cannot_see_falls_back_to_metadata(self):
        def invisible(context, image_id):
            return None

        def no_glance(context, image_id):
            raise ownership.GlanceUnavailable('not inside glance-api')
        for lookup in (invisible, no_glance):
            self.assertRaises(exceptions.Forbidden,
                              ownership.check_may_delete,
                              volume(image_owner=OURS), base.Context(THEIRS),
                              lookup)
            ownership.check_may_delete(volume(image_owner=OURS),
                                       base.Context(OURS), lookup)

    def test_no_owner(self):
        # Nothing says whose it is: not registrable by a non-admin, but
        # deletable (volumes of writers that kept no image_owner).
        ctx = base.Context(THEIRS)
        self.assertRaises(exceptions.NotFound, ownership.check_may_register,
                          volume(glance_image_id='img1'), ctx)
        ownership.check_may_delete(volume(glance_image_id='img1'), ctx)


class TestOwnerForUpload(base.TestCase):

    def test_non_admin_owns_what_it_uploads(self):
        def lookup(context, image_id):
            raise AssertionError('no lookup for a non-admin')
        self.assertEqual(OURS, ownership.owner_for_upload(
            base.Context(OURS), 'img1', lookup))

    def test_admin_upload_gets_the_images_owner(self):
        seen = []

        def lookup(context, image_id):
            seen.append((context.project_id, image_id))
            return THEIRS
        self.assertEqual(THEIRS, ownership.owner_for_upload(
            base.Context(OURS, is_admin=True), 'img1', lookup))
        self.assertEqual([(OURS, 'img1')], seen)

    def test_unknown_owner_is_left_out(self):
        def lookup(context, image_id):
            raise RuntimeError('no glance here')
        self.assertIsNone(ownership.owner_for_upload(
            base.Context(OURS, is_admin=True), 'img1', lookup))
        # Outside glance-api there is no Glance database to ask.
        self.assertIsNone(ownership.owner_for_upload(
            base.Context(OURS, is_admin=True), 'img1'))
        self.assertIsNone(ownership.owner_for_upload(None, 'img1'))


class TestImagesNamingAVolume(base.TestCase):
    """Which images name a volume, as Glance's database rows say."""

    def rows(self, *rows):
        return lambda volume_id: list(rows)

    def test_glance_unavailable_is_none(self):
        def unavailable(volume_id):
            raise ownership.GlanceUnavailable('not inside glance-api')
        self.assertIsNone(ownership.images_naming('v', unavailable))
        self.assertIsNone(ownership.other_images_using('v', unavailable))

    def test_one_image_deletes(self):
        self.assertEqual([], ownership.other_images_using(
            'v', self.rows(('a', True, 'active'))))

    def test_two_live_images_keep_it(self):
        self.assertEqual(['a', 'b'], ownership.other_images_using(
            'v', self.rows(('a', True, 'active'), ('b', True, 'active'))))
        self.assertEqual(['a', 'b'], ownership.images_naming(
            'v', self.rows(('b', True, 'active'), ('a', True, 'active'))))

    def test_scrubbed_image_beside_a_live_one_keeps_it(self):
        self.assertEqual(['a', 'b'], ownership.other_images_using(
            'v', self.rows(('a', False, 'pending_delete'),
                           ('b', True, 'active'))))

    def test_two_scrubbed_images_delete(self):
        self.assertEqual([], ownership.other_images_using(
            'v', self.rows(('a', False, 'pending_delete'),
                           ('b', False, 'pending_delete'))))
