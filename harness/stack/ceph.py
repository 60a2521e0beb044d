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

"""A single-node Ceph on 127.0.0.1: one mon, one mgr, one OSD on a file.

Debian's packages (16.2), the daemons run in the foreground under this
stack's pids (no systemd, no cephadm). Pools ``volumes`` (Cinder's RBD
backend) and ``images`` (glance_store's ``rbd`` store); users
``client.cinder`` and ``client.glance``. os-brick reads a user's keyring
from ``/etc/ceph/<cluster>.client.<user>.keyring`` only, so the stack links
the cinder keyring there. The Python bindings come from Debian: the two
``.so`` files are linked into one directory that the venvs add to their
path (not all of dist-packages).
"""

import glob
import json
import os
import shutil
import uuid

from harness.stack import service

PACKAGES = ['ceph-mon', 'ceph-osd', 'ceph-mgr', 'python3-rbd',
            'python3-rados']
OSD_BYTES = 12 * 1024 ** 3
KEYRING_LINK = '/etc/ceph/ceph.client.cinder.keyring'
#: The mon's ports: another Ceph holding them would answer our clients.
MON_PORTS = (3300, 6789)
#: Health checks a one-node test cluster may show and still serve: a host
#: disk with little free space (MON_DISK_LOW: the stack's OSD is a
#: preallocated file, its data does not grow on the host), pools of one
#: replica, a daemon's old crash report.
BENIGN_CHECKS = frozenset(['MON_DISK_LOW', 'POOL_NO_REDUNDANCY',
                           'RECENT_CRASH'])


class Ceph(service.Service):
    name = 'ceph'
    daemons = ('ceph-mon', 'ceph-mgr', 'ceph-osd')

    @property
    def dir(self):
        return self.s.path('ceph')

    @property
    def conf(self):
        return os.path.join(self.dir, 'ceph.conf')

    @property
    def python_path(self):
        """The directory holding Debian's rados and rbd bindings."""
        return os.path.join(self.dir, 'pyceph')

    def keyring(self, user):
        return os.path.join(self.dir, 'ceph.client.%s.keyring' % user)

    def processes(self):
        return list(self.daemons)

    # -- install -------------------------------------------------------

    def install(self):
        missing = [p for p in PACKAGES if not service.deb_installed(p)]
        if missing:
            # The recommends would add an MDS, a radosgw and more.
            service.apt_install(missing, recommends=False)
        os.makedirs(self.python_path, exist_ok=True)
        for so in glob.glob('/usr/lib/python3/dist-packages/'
                            'r[ab][db]*.cpython-311-*.so'):
            link = os.path.join(self.python_path, os.path.basename(so))
            if not os.path.lexists(link):
                os.symlink(so, link)

    def add_to_venv(self, venv):
        """Make ``venv`` import rados and rbd (a .pth, not dist-packages)."""
        for site in glob.glob(os.path.join(venv, 'lib', 'python3*',
                                           'site-packages')):
            with open(os.path.join(site, 'ceph-bindings.pth'), 'w') as f:
                f.write(self.python_path + '\n')

    # -- start / stop --------------------------------------------------

    def ceph(self, *args, check=True, timeout=120):
        return service.run(['ceph', '-c', self.conf, '--connect-timeout',
                            '10'] + list(args), check=check,
                           timeout=timeout)

    def _spawn(self, daemon, ident):
        self.spawn([daemon, '-f', '-c', self.conf, '-i', ident],
                   os.path.join(self.dir, 'log', '%s.out' % daemon),
                   name=daemon)

    @property
    def _made(self):
        """Written last by :meth:`_create`: the cluster is whole."""
        return os.path.join(self.dir, 'created')

    def start(self):
        if (os.path.exists(self.keyring('glance')) and
                not os.path.exists(self._made)):
            # Made before the marker existed: its last step is done.
            with open(self._made, 'w') as f:
                f.write('%s\n' % self._fsid())
        if (os.path.exists(os.path.join(self.dir, 'data')) and
                not os.path.exists(self._made)):
            # An earlier up stopped while making it (killed, or a port
            # taken): its half is no cluster to start; make it again.
            service.log('ceph: %s holds a cluster an earlier up did not '
                        'finish making: removing it' % self.dir)
            self._remove_half_made()
        if not self.alive('ceph-mon'):
            self._check_ports()
        if not os.path.exists(self._made):
            self._create()
        else:
            for daemon, ident in (('ceph-mon', 'a'), ('ceph-mgr', 'x'),
                                  ('ceph-osd', '0')):
                if not self.alive(daemon):
                    self._spawn(daemon, ident)
        service.wait_for(120, 'Ceph healthy (HEALTH_OK or benign warnings) '
                         'with every PG active',
                         self.healthy, interval=1)
        if os.path.realpath(KEYRING_LINK) != os.path.realpath(
                self.keyring('cinder')):
            # Ours, or a link an earlier stack (another state dir) left.
            if os.path.islink(KEYRING_LINK):
                os.unlink(KEYRING_LINK)
            if os.path.exists(KEYRING_LINK):
                raise service.StackError(
                    '%s exists and is not the stack\'s: move it away'
                    % KEYRING_LINK)
            os.makedirs(os.path.dirname(KEYRING_LINK), exist_ok=True)
            os.symlink(self.keyring('cinder'), KEYRING_LINK)

    def _remove_half_made(self):
        for daemon in reversed(self.daemons):
            self.kill_recorded(daemon, grace=5)
        for entry in os.listdir(self.dir):
            if entry == os.path.basename(self.python_path):
                continue  # the install step's links
            path = os.path.join(self.dir, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)

    def _check_ports(self):
        """Refuse to start a mon when another process holds its ports."""
        for port in MON_PORTS:
            holder = service.listener(port)
            if holder is not None:
                raise service.StackError(
                    'ceph: port %d is taken%s; the stack\'s mon needs it: '
                    'stop that process (another Ceph?) and run up again'
                    % (port, ' by %s (pid %d)' % holder if holder[1] else ''))

    def _create(self):
        d = self.dir
        for sub in ('run', 'crash', 'log', 'data/mon/ceph-a',
                    'data/mgr/ceph-x', 'data/osd/ceph-0'):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        with open(self.conf, 'w') as f:
            f.write(service.render('ceph.conf', fsid=uuid.uuid4(), dir=d))
        mon_keyring = os.path.join(d, 'ceph.mon.keyring')
        admin = self.keyring('admin')
        service.run(['ceph-authtool', '--create-keyring', mon_keyring,
                     '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'])
        service.run(['ceph-authtool', '--create-keyring', admin, '--gen-key',
                     '-n', 'client.admin', '--cap', 'mon', 'allow *',
                     '--cap', 'osd', 'allow *', '--cap', 'mds', 'allow *',
                     '--cap', 'mgr', 'allow *'])
        service.run(['ceph-authtool', mon_keyring, '--import-keyring',
                     admin])
        fsid = self._fsid()
        monmap = os.path.join(d, 'monmap')
        service.run(['monmaptool', '--create', '--fsid', fsid, '--addv', 'a',
                     '[v2:127.0.0.1:3300,v1:127.0.0.1:6789]', monmap])
        service.run(['ceph-mon', '-c', self.conf, '--mkfs', '-i', 'a',
                     '--monmap', monmap, '--keyring', mon_keyring])
        self._spawn('ceph-mon', 'a')
        service.wait_for(60, 'ceph-mon', lambda: self.ceph('mon', 'stat'))
        self.ceph('auth', 'get-or-create', 'mgr.x', 'mon', 'allow profile mgr',
                  'osd', 'allow *', 'mds', 'allow *', '-o',
                  os.path.join(d, 'data/mgr/ceph-x/keyring'))
        self._spawn('ceph-mgr', 'x')
        osd_uuid = str(uuid.uuid4())
        osd_id = self.ceph('osd', 'new', osd_uuid).strip()
        self.ceph('auth', 'get-or-create', 'osd.%s' % osd_id, 'mon',
                  'allow profile osd', 'mgr', 'allow profile osd', 'osd',
                  'allow *', '-o', os.path.join(d, 'data/osd/ceph-0/keyring'))
        # Fallocated: first writes to a sparse block file are ~2x slower.
        service.run(['fallocate', '-l', str(OSD_BYTES),
                     os.path.join(d, 'data/osd/ceph-0/block')])
        service.run(['ceph-osd', '-c', self.conf, '-i', osd_id, '--mkfs',
                     '--osd-uuid', osd_uuid,
                     '--bluestore_block_size=%d' % OSD_BYTES])
        self._spawn('ceph-osd', osd_id)
        for pool in ('volumes', 'images'):
            self.ceph('osd', 'pool', 'create', pool, '16', '16')
            self.ceph('osd', 'pool', 'application', 'enable', pool, 'rbd')
            service.run(['rbd', '-c', self.conf, 'pool', 'init', pool])
        self.ceph('auth', 'get-or-create', 'client.cinder', 'mon',
                  'profile rbd', 'osd', 'profile rbd pool=volumes, '
                  'profile rbd pool=images', 'mgr', 'profile rbd pool=volumes',
                  '-o', self.keyring('cinder'))
        self.ceph('auth', 'get-or-create', 'client.glance', 'mon',
                  'profile rbd', 'osd', 'profile rbd pool=images', 'mgr',
                  'profile rbd pool=images', '-o', self.keyring('glance'))
        for user in ('cinder', 'glance'):
            os.chmod(self.keyring(user), 0o644)
        with open(self._made, 'w') as f:
            f.write('%s\n' % fsid)

    def _fsid(self):
        with open(self.conf) as f:
            for line in f:
                if line.startswith('fsid = '):
                    return line.split('=', 1)[1].strip()

    def healthy(self):
        if not all(self.alive(d) for d in self.daemons):
            return False
        if not self.serving():
            return False
        # HEALTH_OK can come before every PG is active.
        stat = json.loads(self.ceph('pg', 'stat', '-f', 'json', timeout=30))
        states = stat.get('pg_summary', stat).get('num_pg_by_state', [])
        total = sum(s['num'] for s in states)
        active = sum(s['num'] for s in states
                     if s['name'].startswith('active'))
        return total > 0 and total == active

    def serving(self):
        """HEALTH_OK, or warnings a test cluster may have (BENIGN_CHECKS)."""
        health = json.loads(self.ceph('health', '-f', 'json', timeout=30))
        if health.get('status') == 'HEALTH_OK':
            return True
        checks = set(health.get('checks', {}))
        return (health.get('status') == 'HEALTH_WARN' and
                checks <= BENIGN_CHECKS)

    def stop(self):
        for daemon in reversed(self.daemons):
            self.kill_recorded(daemon, grace=15)
        # The link start made, only if it is still this stack's.
        if (os.path.islink(KEYRING_LINK) and
                os.readlink(KEYRING_LINK) == self.keyring('cinder')):
            os.unlink(KEYRING_LINK)

    def describe(self):
        return ('ceph:      %s (pools volumes, images; users cinder, '
                'glance)' % self.conf)
