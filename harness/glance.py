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

"""Glance as a user reaches it.

A glanceclient, downloads over HTTP, and (on the local stack) the store's
own account from glance-api's log.
"""

import hashlib

from oslo_utils import units

MiB = units.Mi


class GlanceUser(object):
    """An ordinary user of a cloud's Glance."""

    def __init__(self, cloud, url=None, session=None):
        """:param url: another glance-api than the catalog's

        :param session: a keystoneauth session (default: the cloud's one
            per process)
        """
        from glanceclient import client
        self.cloud = cloud
        self.session = session or cloud.session()
        self.url = (url or self.session.get_endpoint(
            service_type='image', interface='public')).rstrip('/')
        self.client = client.Client('2', session=self.session,
                                    endpoint=self.url)

    @property
    def project_id(self):
        return self.session.get_project_id()

    def create(self, name, **kw):
        kw.setdefault('disk_format', 'raw')
        return self.client.images.create(name=name, container_format='bare',
                                         **kw)

    def delete_quietly(self, image_id):
        try:
            self.client.images.delete(image_id)
        except Exception:
            pass  # already gone

    def download(self, image_id, byte_range=None, chunk=4 * MiB):
        """GET the image data; returns (HTTP status, sha256 hex, bytes)."""
        headers = {}
        if byte_range:
            headers['Range'] = 'bytes=%d-%d' % byte_range
        resp = self.session.get('%s/v2/images/%s/file' % (self.url, image_id),
                                headers=headers, stream=True,
                                raise_exc=False)
        digest = hashlib.sha256()
        total = 0
        for data in resp.iter_content(chunk):
            digest.update(data)
            total += len(data)
        return resp.status_code, digest.hexdigest(), total


def store_reports(store_cloud, image_id, volume_id=None):
    """The store's stats of ``image_id`` (or its volume) from the log.

    :class:`~cinder_ext_store.stats.TransferStats`, oldest first, each
    with the ``pid`` of the worker that logged it; None where the log is
    out of reach (not the local stack).
    """
    from cinder_ext_store import stats
    path = store_cloud.facts.glance and store_cloud.facts.glance.log
    if not path:
        return None
    found = []
    with open(path) as f:
        for line in f:
            parsed = stats.TransferStats.parse(line)
            # A read before the volume names its image (Glance's hash
            # pass over a volume Cinder registered) is known by volume.
            if parsed is not None and (parsed.image_id == image_id or (
                    volume_id and parsed.volume_id == volume_id)):
                # oslo.log's default format: date, time, pid, level, ...
                fields = line.split(None, 3)
                parsed.pid = (int(fields[2]) if len(fields) > 2 and
                              fields[2].isdigit() else None)
                found.append(parsed)
    return found
