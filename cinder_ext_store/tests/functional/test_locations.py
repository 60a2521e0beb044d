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

"""Locations users register: another project's image volume stays theirs.

Through Glance's API, as an attacker would try it: with Glance's defaults
(users cannot add a ``cinder://`` location at all) and on a glance-api with
``show_multiple_locations = True`` (OSSN-0065), where the store's own rules
must refuse.
"""


from cinder_ext_store.tests.functional import base
from cinder_ext_store.tests.functional import test_glance
from harness import clouds
from harness import glance
from harness import images

SIZE = 8 * base.MiB + 5


class TestForeignLocations(test_glance.GlanceTestCase):

    def setUp(self):
        super(TestForeignLocations, self).setUp()
        alt = clouds.load(self.cloud.facts.alt_cloud or clouds.ALT_CLOUD)
        self.attacker = glance.GlanceUser(alt)
        self.addCleanup(self.assertNoLeftovers)
        # The victim: demo's image, stored by this store.
        self.victim = self.create('victim')
        self.src = images.ImageSource(SIZE, seed=51)
        self.glance.images.upload(self.victim.id, images.Unsized(self.src),
                                  image_size=SIZE, backend=self.backend)
        self.victim_volume = self.volume_of(self.victim.id)
        self.victim_uri = 'cinder://%s/%s' % (self.backend,
                                              self.victim_volume.id)

    def attackers_image(self, user=None):
        user = user or self.attacker
        image = user.create('attack')
        self.addCleanup(user.delete_quietly, image.id)
        return image

    def patch_add_location(self, user, image_id, uri):
        return user.session.patch(
            '%s/v2/images/%s' % (user.url, image_id),
            json=[{'op': 'add', 'path': '/locations/-',
                   'value': {'url': uri,
                             'metadata': {'store': self.backend}}}],
            headers={'Content-Type':
                     'application/openstack-images-v2.1-json-patch'},
            raise_exc=False)

    def assertVictimIntact(self):
        image = self.glance.images.get(self.victim.id)
        self.assertEqual('active', image.status)
        self.assertEqual((200, self.src.hexdigest(), SIZE),
                         self.user.download(self.victim.id))

    def test_default_glance_lets_no_user_add_a_cinder_location(self):
        image = self.attackers_image()
        # The old route: locations are hidden, so they cannot be added.
        resp = self.patch_add_location(self.attacker, image.id,
                                       self.victim_uri)
        self.assertEqual(403, resp.status_code, resp.text)
        # The new location API: only services may add a non-http location.
        resp = self.attacker.session.post(
            '%s/v2/images/%s/locations' % (self.attacker.url, image.id),
            json={'url': self.victim_uri}, raise_exc=False)
        self.assertEqual(403, resp.status_code, resp.text)
        self.assertEqual('queued',
                         self.attacker.client.images.get(image.id).status)
        self.assertVictimIntact()

    def locations_glance(self, cloud):
        url = self.cloud.facts.glance.locations_url
        if not url:
            self.skipTest('no glance-api with show_multiple_locations here')
        return glance.GlanceUser(cloud, url)

    def test_another_projects_volume_is_refused_as_a_location(self):
        attacker = self.locations_glance(self.attacker.cloud)
        image = self.attackers_image(attacker)
        resp = self.patch_add_location(attacker, image.id, self.victim_uri)
        # The store refuses in get_size, which Glance asks of every
        # location it adds: "Invalid location".
        self.assertEqual(400, resp.status_code, resp.text)
        self.assertEqual('queued', attacker.client.images.get(image.id).status)
        self.assertVictimIntact()

    def test_a_volume_that_holds_no_image_is_refused(self):
        attacker = self.locations_glance(self.attacker.cloud)
        cinder = self.attacker.cloud.cinder()
        volume = cinder.volumes.create(1, name='not-an-image')
        self.addCleanup(self._delete_when_available, cinder, volume.id)
        image = self.attackers_image(attacker)
        resp = self.patch_add_location(attacker, image.id,
                                       'cinder://%s/%s' % (self.backend,
                                                           volume.id))
        self.assertEqual(400, resp.status_code, resp.text)

    def _delete_when_available(self, cinder, volume_id):
        self.wait_for('volume %s created' % volume_id,
                      lambda: cinder.volumes.get(volume_id).status !=
                      'creating', 60)
        cinder.volumes.delete(volume_id)
        self.inspect.wait_gone(volume_id, 60)

    def test_deleting_an_image_spares_another_projects_volume(self):
        # An admin (whom the store trusts) registers the victim's volume as
        # the location of the attacker's image; the attacker deletes that
        # image: Glance answers 403, the volume and the victim survive.
        admin = self.locations_glance(clouds.load(clouds.ADMIN_CLOUD))
        image = self.attackers_image()
        resp = self.patch_add_location(admin, image.id, self.victim_uri)
        self.assertEqual(200, resp.status_code, resp.text)
        resp = self.attacker.session.delete(
            '%s/v2/images/%s' % (self.attacker.url, image.id),
            raise_exc=False)
        self.assertEqual(403, resp.status_code, resp.text)
        self.assertIn(self.victim_volume.id, self.inspect.volumes())
        self.assertVictimIntact()
        # The victim deletes its image: the volume stays, since the image
        # the admin pointed at it still names it (deleting one image never
        # takes another's data).
        self.glance.images.delete(self.victim.id)
        self.assertIn(self.victim_volume.id, self.inspect.volumes())
        # The attacker still may not delete another project's volume; the
        # admin who made the location takes it back, with the volume.
        resp = self.attacker.session.delete(
            '%s/v2/images/%s' % (self.attacker.url, image.id),
            raise_exc=False)
        self.assertEqual(403, resp.status_code, resp.text)
        admin.client.images.delete(image.id)
        self.assertTrue(self.inspect.wait_gone(self.victim_volume.id, 60))
