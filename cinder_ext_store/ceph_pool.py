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

"""What Cinder's RBD driver leaves in its pool, seen read-only.

When Cinder clones a volume from an image volume it snapshots the image
volume (``<source>@<clone name>.clone_snap``) and clones that snapshot.
Deleting a volume that still has such a snapshot does not remove it: Cinder
renames it ``<name>.deleted`` and removes it with its last clone. Two things
can then hold space for good, which ``reconcile`` reports (it never changes
Ceph; these are Cinder's):

* a ``.deleted`` image: held while clones depend on it (expected), or with
  none left (Cinder lost track, e.g. clones deleted at the same time);
* a clone snapshot no clone depends on, on one of this store's image
  volumes: when that image is deleted, Cinder keeps the volume as
  ``.deleted`` forever instead of removing it.

Where the pool is and which Ceph user reads it come from the record the
store's last attach on this host left (host_records.Records.note_backend);
the user's keyring is where os-brick reads it.
"""

import contextlib
import importlib
import os
import re

#: Where os-brick (and so this store) reads a Ceph user's keyring.
CEPH_DIR = '/etc/ceph'
#: Seconds any Ceph call of reconcile may take.
TIMEOUT = 10

CLONE_SNAP = '.clone_snap'
DELETED = '.deleted'
_UUID_AT_END = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-'
                          r'[0-9a-f]{4}-[0-9a-f]{12}$')


def name_template(rbd_name):
    """``volume-%s`` from ``volume-<uuid>`` (Cinder's volume_name_template)."""
    found = _UUID_AT_END.search(rbd_name or '')
    return rbd_name[:found.start()] + '%s' if found else None


def mon_host(hosts, ports):
    """Cinder's monitor list as a ``mon_host`` value."""
    return ','.join('%s:%s' % ('[%s]' % h if ':' in h else h, p)
                    for h, p in zip(hosts, ports))


def keyring(cluster, user):
    return os.path.join(CEPH_DIR, '%s.client.%s.keyring' % (cluster, user))


@contextlib.contextmanager
def pool(facts):
    """An ``(rbd module, ioctx)`` of the recorded pool, as its Ceph user.

    :raises ImportError: no Ceph bindings
    :raises Exception: whatever librados raises (no keyring, timeouts)
    """
    rados = importlib.import_module('rados')
    rbd = importlib.import_module('rbd')
    conf = {'keyring': keyring(facts['cluster_name'],
                               facts['auth_username']),
            'client_mount_timeout': str(TIMEOUT),
            'rados_mon_op_timeout': str(TIMEOUT),
            'rados_osd_op_timeout': str(TIMEOUT)}
    if facts.get('hosts'):
        conf['mon_host'] = mon_host(facts['hosts'], facts.get('ports') or [])
    cluster = rados.Rados(rados_id=facts['auth_username'],
                          clustername=facts['cluster_name'], conf=conf)
    try:
        cluster.connect(timeout=TIMEOUT)
        with cluster.open_ioctx(facts['pool']) as ioctx:
            yield rbd, ioctx
    finally:
        cluster.shutdown()


def _children(image, snaps):
    """``pool/name`` of the clones of ``image``'s snapshots ``snaps``."""
    found = []
    for snap in snaps:
        image.set_snap(snap)
        found += ['%s/%s' % child for child in image.list_children()]
    image.set_snap(None)
    return found


def leftovers(facts, volume_ids):
    """What Cinder left in the recorded pool: ``(kind, name, detail)``.

    :param facts: the backend's record (protocol ``rbd``)
    :param volume_ids: this store's image volumes, whose clone snapshots
        are looked at
    :returns: ``deleted`` (a ``.deleted`` image: detail lists the clones
        holding it, empty when none does) and ``clone_snap`` (``name`` is
        ``image@snapshot``, of a snapshot no clone depends on) entries
    """
    found = []
    template = facts.get('name_template') or 'volume-%s'
    with pool(facts) as (rbd, ioctx):
        names = set(rbd.RBD().list(ioctx))
        for name in sorted(n for n in names if n.endswith(DELETED)):
            with rbd.Image(ioctx, name, read_only=True) as image:
                snaps = [s['name'] for s in image.list_snaps()]
                found.append(('deleted', '%s/%s' % (facts['pool'], name),
                              _children(image, snaps)))
        for volume_id in sorted(volume_ids):
            name = template % volume_id
            if name not in names:
                continue
            with rbd.Image(ioctx, name, read_only=True) as image:
                for snap in [s['name'] for s in image.list_snaps()
                             if s['name'].endswith(CLONE_SNAP)]:
                    if not _children(image, [snap]):
                        found.append(('clone_snap', '%s/%s@%s' % (
                            facts['pool'], name, snap), []))
    return found
