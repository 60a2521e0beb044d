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

"""What Cinder and this host hold, seen from outside the store.

Volumes, attachments and (on the local stack) the loop devices of its
volumes; with Ceph, the RBD images of its pools, the temporary ceph
configurations os-brick writes for each RBD connection (they hold a key) and
the librados connections (with their threads) open in the test process and
in glance-api's workers.
"""

import glob
import json
import os
import subprocess

from harness import procfs
from harness import waiting


def record(cloud, name, text):
    """Append ``text`` to ``<stack log dir>/<name>`` (local stack only).

    What the fault matrix and the crash test did, for people reading a
    run afterwards (CI, a session note).
    """
    stack_dir = cloud.facts.stack_dir
    if stack_dir:
        with open(os.path.join(stack_dir, 'log', name), 'a') as f:
            f.write(text.rstrip('\n') + '\n')


class Inspector(object):
    """Snapshots of a cloud, to prove that a test left nothing behind."""

    def __init__(self, cloud):
        from harness import clouds
        self.cloud = cloud
        # The admin sees every project's volumes (the store's own user is
        # no admin, and Cinder ignores all_tenants for it).
        try:
            self.cinder = clouds.load(clouds.ADMIN_CLOUD).cinder()
        except LookupError:  # a cloud without an admin
            self.cinder = cloud.cinder()

    def volumes(self):
        """Every project's volumes where the credentials allow it."""
        return {v.id: v for v in self.cinder.volumes.list(
            search_opts={'all_tenants': 1})}

    def attachments(self):
        return {a.id for a in self.cinder.attachments.list(
            search_opts={'all_tenants': 1})}

    def loops(self):
        """Loop devices backing the local stack's volume files."""
        vdir = self.cloud.facts.volume_dir
        if not vdir:
            return set()
        out = subprocess.run(['losetup', '-a'], capture_output=True,
                             text=True, check=True).stdout
        return {line.split(':', 1)[0] for line in out.splitlines()
                if vdir in line}

    def rbd_images(self):
        """RBD images of the local stack's pools (``pool/name``).

        Leaves out ``<volume>.deleted``: Cinder's RBD driver keeps a deleted
        volume that still has clone snapshots under that name, and Cinder
        29 never removes the snapshot of a clone it deletes by its fast
        path (``_delete_volume`` returns before cleaning parent
        references), so after any clone chain such images stay. They are
        Cinder's, not the store's (the store never clones).
        """
        conf = self.cloud.facts.ceph_conf
        if not conf:
            return set()
        found = set()
        for pool in ('volumes', 'images'):
            out = subprocess.run(
                ['rbd', '-c', conf, '--id', 'admin', 'ls', pool, '--format',
                 'json'], capture_output=True, text=True).stdout
            found.update('%s/%s' % (pool, name)
                         for name in json.loads(out or '[]')
                         if not name.endswith('.deleted'))
        return found

    @staticmethod
    def brick_rbd_confs():
        """os-brick's per-connection ceph configurations (with a key)."""
        return set(glob.glob('/tmp/brickrbd_*'))

    def _processes(self):
        """This process and glance-api's workers, on both hosts."""
        glance = self.cloud.facts.glance
        master = glance and procfs.read_pidfile(glance.pidfile)
        found = [os.getpid()] + (procfs.children(master) if master else [])
        second = glance and glance.second_host
        if second:
            # unshare -> uWSGI's master (the host's pid 1) -> workers
            for init in procfs.children(procfs.read_pidfile(second.pidfile)):
                found += procfs.children(init)
        return found

    def records(self):
        """The store's records in each glance-api host's lock path."""
        glance = self.cloud.facts.glance
        paths = [glance.lock_path] if glance and glance.lock_path else []
        if glance and glance.second_host:
            paths.append(glance.second_host.lock_path)
        return {path for lock in paths for path in glob.glob(os.path.join(
            lock, 'cinder_ext_reads', '*.json')) + glob.glob(os.path.join(
                lock, 'cinder_ext_reads', '*.upload'))}

    def rados_connections(self):
        """Open librados connections, per process that has any.

        Each connected ``rados.Rados`` runs its own messenger threads, the
        first named ``msgr-worker-0``: counting those counts connections
        (and the threads they hold), in this process (the in-process
        stores) and in glance-api's workers.
        """
        found = set()
        for pid in self._processes():
            count = procfs.thread_names(pid).count('msgr-worker-0')
            if count:
                found.add('pid %d: %d' % (pid, count))
        return found

    def snapshot(self):
        return {'volumes': set(self.volumes()),
                'attachments': self.attachments(), 'loop devices':
                self.loops(), 'RBD images': self.rbd_images(),
                'os-brick RBD configurations': self.brick_rbd_confs(),
                'rados connections': self.rados_connections(),
                'lock-path records': self.records()}

    def wait_until(self, before, timeout=60):
        """Wait until the cloud is as ``before``; returns the last snapshot.

        Cinder deletes asynchronously.
        """
        last = []

        def as_before():
            last[:] = [self.snapshot()]
            return last[0] == before
        # A snapshot costs ~0.2 s; Cinder deletes a volume in about a
        # second.
        waiting.until(as_before, timeout, 0.2)
        return last[0]

    def wait_gone(self, volume_id, timeout=120):
        """Wait until Cinder no longer lists the volume; False on timeout."""
        return bool(waiting.until(
            lambda: volume_id not in self.volumes(), timeout, 0.3))

    def wait_pool_free(self, backend_name, gib, timeout=120):
        """Wait until the scheduler sees ``gib`` free in that pool.

        It learns of deletions only from the volume service's periodic
        stats (every minute): a pool the previous test filled looks full
        until then.
        """
        from harness import clouds
        admin = clouds.load(clouds.ADMIN_CLOUD).cinder()

        def free():
            # (cinderclient lifts the capabilities onto the pool)
            return [getattr(p, 'free_capacity_gb', 0)
                    for p in admin.pools.list(detailed=True)
                    if getattr(p, 'volume_backend_name', None) ==
                    backend_name]
        try:
            waiting.until(lambda: (free() or [0])[0] >= gib, timeout, 1,
                          what='%d GiB free in pool %s' % (gib, backend_name))
        except waiting.TimedOut as e:
            raise AssertionError('%s (it has %s GiB free)' % (e, free()))

    def wait_idle(self, timeout=300):
        """Wait until no volume is being deleted; False on timeout."""
        return bool(waiting.until(
            lambda: not any(v.status == 'deleting'
                            for v in self.cinder.volumes.list()),
            timeout, 0.2))
