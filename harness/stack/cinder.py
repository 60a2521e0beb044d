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

"""Cinder 29: volume service, scheduler and API, on PostgreSQL + RabbitMQ.

Four backends of the test-only loop-device driver (:mod:`.loop_driver`):
volume type loop extends in use, loop-offline reports that it
cannot, so Cinder's scheduler really refuses in-use extends there,
loop-small is a thick 1 GiB pool, which the scheduler finds full, and
loop-full a thin pool on a 256 MiB file system, whose writes fail with
ENOSPC; loop-offline keeps Cinder's image-volume cache. The
processes start in order - volume service, scheduler, API - each once the
previous one's queue exists: started together, the scheduler may miss the
pools for minutes and early API calls hang.
"""

import glob
import os
import shutil
import signal

from harness import procfs
from harness.stack import rest
from harness.stack import service

#: volume type -> whether its pool reports online_extend_support
VOLUME_TYPES = {'loop': True, 'loop-offline': False, 'loop-small': True,
                'loop-full': True}
#: Thick pools of a few GiB, which the scheduler really finds full
CAPACITY_GB = {'loop-small': 1}
#: Thin pools that claim 20 GiB on a file system of FULL_FS_MIB: writes
#: fail with ENOSPC, as on an over-subscribed backend that filled up
THIN_CAPACITY_GB = {'loop-full': 20}
FULL_FS_MIB = 256
# No 'image_service:store_id' extra spec: Cinder 29 sends it to Glance 33's
# add-location call as validation data, which Glance refuses (HTTP 400,
# "'store' was unexpected"), and upload-to-image falls back to copying the
# data through glance-api. Without it Cinder registers cinder://<volume id>
# and Glance asks each cinder store whether the volume is its own
# (Store.is_image_associated_with_store: the volume type).
#: Backends with Cinder's image-volume cache: volumes made from images
#: Cinder cannot clone (another backend's image volume, a format it must
#: convert) become cache entries, volumes named ``image-<id>`` in the
#: internal tenant - here the service project, beside the image volumes.
IMAGE_CACHE = {'loop-offline': ('image_volume_cache_enabled = True\n'
                                'image_volume_cache_max_count = 4\n'
                                'image_volume_cache_max_size_gb = 8\n')}
#: More volume types on those pools: name -> extra specs
EXTRA_TYPES = {'loop-multiattach': {'volume_backend_name': 'loop',
                                    'multiattach': '<is> True'}}
#: With Ceph: more types on the rbd backend
RBD_TYPES = {'rbd-multiattach': {'volume_backend_name': 'rbd',
                                 'multiattach': '<is> True'}}
HOST = 'teststack'


class Cinder(service.Service):
    name = 'cinder'
    #: Started in this order, stopped in the reverse.
    PROCESSES = ('cinder-volume', 'cinder-scheduler', 'cinder-api')

    def __init__(self, settings, postgres, rabbit, keystone=None,
                 ceph=None):
        super(Cinder, self).__init__(settings)
        self.postgres = postgres
        self.rabbit = rabbit
        self.keystone = keystone
        self.ceph = ceph

    @property
    def backends(self):
        """Cinder's backends: the loop ones, and rbd with Ceph."""
        return list(VOLUME_TYPES) + (['rbd'] if self.ceph else [])

    @property
    def venv(self):
        return self.s.venv('cinder')

    @property
    def conf(self):
        return self.s.path('cinder', 'cinder.conf')

    @property
    def volume_dir(self):
        return self.s.path('volumes')

    @property
    def full_dir(self):
        """Where loop-full keeps its volumes: a small file system."""
        return os.path.join(self.volume_dir, 'full')

    def _volume_dir_of(self, backend):
        return self.full_dir if backend in THIN_CAPACITY_GB else \
            self.volume_dir

    def _mount_full_fs(self):
        if os.path.ismount(self.full_dir):
            return
        image = self.s.path('full-fs.img')
        os.makedirs(self.full_dir, exist_ok=True)
        with open(image, 'wb') as f:
            f.truncate(FULL_FS_MIB * 1024 * 1024)
        service.run(['mkfs.ext4', '-q', '-F', image])
        service.run(['mount', '-o', 'loop', image, self.full_dir])

    def _unmount_full_fs(self):
        if os.path.ismount(self.full_dir):
            service.run(['umount', self.full_dir], check=False)

    def install(self):
        # Volume from image by download converts with qemu-img.
        if not service.have_command('qemu-img'):
            service.apt_install(['qemu-utils'])
        service.make_venv(self.venv, 'cinder-volume',
                          [self.s.pins['cinder'], 'python-cinderclient',
                           'psycopg2-binary'], self.s.path('pip.log'))
        if self.ceph:
            self.ceph.add_to_venv(self.venv)

    def _write_config(self):
        for sub in ('log', 'lock', 'state', 'coord'):
            os.makedirs(self.s.path('cinder', sub), exist_ok=True)
        os.makedirs(self.volume_dir, exist_ok=True)
        etc = os.path.join(self.venv, 'etc', 'cinder')
        for name in ('api-paste.ini', 'resource_filters.json'):
            shutil.copy(os.path.join(etc, name), self.s.path('cinder'))
        # image_upload_use_cinder_backend: upload-to-image clones the volume
        # into an image volume and registers it with Glance's store; in
        # the internal tenant (the service project, as DevStack sets it),
        # where Glance's non-admin store user sees it.
        internal = ('image_upload_use_internal_tenant = True\n'
                    if self.keystone else '')
        tenant = ''
        if self.keystone:
            tenant = ('cinder_internal_tenant_project_id = %s\n'
                      'cinder_internal_tenant_user_id = %s\n'
                      % self.keystone.internal_tenant())
        backends = ''.join(service.render(
            'cinder-backend-loop.conf', name=name, online=online,
            volume_dir=self._volume_dir_of(name),
            capacity=CAPACITY_GB.get(name, 0),
            thin=THIN_CAPACITY_GB.get(name, 0), internal=internal,
            cache=IMAGE_CACHE.get(name, '') if self.keystone else '')
            for name, online in VOLUME_TYPES.items())
        if self.ceph:
            # Cinder's own RBD driver, as most clouds run it.
            backends += service.render('cinder-backend-rbd.conf',
                                       ceph_conf=self.ceph.conf,
                                       internal=internal)
        helper = '%s --config-file %s --privsep_context' % (
            os.path.join(self.venv, 'bin', 'privsep-helper'), self.conf)
        with open(self.conf, 'w') as f:
            f.write(service.render(
                'cinder.conf',
                helper=helper, tenant=tenant,
                glance=self._glance_section(),
                mode=self.s.mode, rabbit=self.rabbit.url, host=HOST,
                dir=self.s.path('cinder'), etc=etc, port=self.s.cinder_port,
                backends=','.join(self.backends),
                db=self.postgres.url('cinder'), backend_sections=backends,
                authtoken=(self.keystone.authtoken('cinder')
                           if self.keystone else '')))

    def _glance_section(self):
        """How Cinder reads image locations (and registers image volumes).

        Clones of image volumes need Glance's locations: Glance shows them
        through its location API to the ``service`` role only, so Cinder
        calls it as its own service user - not through
        ``show_multiple_locations`` for everyone (OSSN-0065, OSSN-0090).
        """
        if not self.keystone:
            return ''
        return service.render('cinder-glance.conf', auth_url=self.s.auth_url,
                              password=self.s.SERVICE_PASSWORD)

    def admin(self):
        """A :class:`~harness.stack.rest.CinderAdmin` of the stack."""
        if self.keystone:
            client, project = self.keystone.admin()
        else:
            project = self.s.NOAUTH_PROJECT
            client = rest.Client('admin:%s' % project)
        return rest.CinderAdmin(client, '%s/%s' % (self.s.cinder_base,
                                                   project))

    def _spawn(self, name):
        if not self.alive(name):
            self.spawn([os.path.join(self.venv, 'bin', name),
                        '--config-file', self.conf],
                       self.s.path('cinder', 'log', '%s.out' % name),
                       env={'PYTHONPATH': service.REPO}, name=name)

    def start_process(self, name):
        """Start one of :attr:`PROCESSES` (if down); wait until it serves."""
        self._spawn(name)
        if name == 'cinder-api':
            service.wait_for(60, 'cinder-api', lambda: self.admin().ping())
        else:
            service.wait_for(90, "%s's queue" % name,
                             lambda: self.rabbit.has_queue(name))

    def stop_process(self, name):
        """Kill one of :attr:`PROCESSES`, as a crash would (SIGKILL)."""
        if name not in self.PROCESSES:
            raise service.StackError('%s is not a Cinder process' % name)
        # cinder-volume runs one child per backend: those first, or they
        # go on serving without their parent.
        pid = self.pid(name)
        for child in procfs.descendants(pid) if pid else ():
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.kill_recorded(name, grace=0)

    def start(self):
        self._mount_full_fs()
        self._write_config()
        service.run([os.path.join(self.venv, 'bin', 'cinder-manage'),
                     '--config-file', self.conf, 'db', 'sync'])
        for name in self.PROCESSES:
            self.start_process(name)
        admin = self.admin()
        hosts = {'%s@%s#' % (HOST, b) for b in self.backends}
        service.wait_for(120, 'every backend\'s pool in the scheduler',
                         lambda: hosts <= {p.split('#')[0] + '#'
                                           for p in admin.pools()})
        for vtype in self.backends:
            admin.ensure_type(vtype, {'volume_backend_name': vtype})
        extra = dict(EXTRA_TYPES, **(RBD_TYPES if self.ceph else {}))
        for vtype, specs in extra.items():
            admin.ensure_type(vtype, specs)

    def healthy(self):
        return all(self.alive(n) for n in self.PROCESSES)

    def processes(self):
        return list(self.PROCESSES)

    def stop(self):
        for name in reversed(self.PROCESSES):
            self.kill_recorded(name)
        self.detach_loops()
        self._unmount_full_fs()

    def detach_loops(self):
        """Detach the loop devices of this stack's volume files, no other."""
        for path in (glob.glob(os.path.join(self.volume_dir, 'volume-*')) +
                     glob.glob(os.path.join(self.full_dir, 'volume-*'))):
            out = service.run(['losetup', '-j', path], check=False)
            for line in out.splitlines():
                service.run(['losetup', '-d', line.split(':', 1)[0]],
                            check=False)

    def describe(self):
        return ('cinder:    %s/<project> (%s); volume types: %s'
                % (self.s.cinder_base, self.s.mode, ', '.join(
                    '%s (%s%s)' % (t, 'online extend' if online else
                                   'no online extend',
                                   ', %d GiB pool' % CAPACITY_GB[t]
                                   if t in CAPACITY_GB else
                                   ', %d MiB file system' % FULL_FS_MIB
                                   if t in THIN_CAPACITY_GB else '')
                    for t, online in VOLUME_TYPES.items()) + ', ' +
                    ', '.join(list(EXTRA_TYPES) + (
                        ['rbd (Ceph)'] + list(RBD_TYPES) if self.ceph
                        else []))))
