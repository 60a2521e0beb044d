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

"""glance-api 33 under uWSGI with this checkout's store as its default.

Backends: ``images`` (default; cinder_ext on type ``loop``, extends attached
volumes), ``offline`` (cinder_ext on ``loop-offline``: detach, extend,
re-attach) and ``multiattach`` (on ``loop-multiattach``: several hosts read
an image at once). The stores use service credentials, as production does.

glance-api runs as the system user ``glance`` (created here), as
distributions run it: it owns only its state directories and log, reads its
configuration (group ``glance``, 0640) and reaches root through ``sudo
glance-rootwrap`` alone. The sudoers rule and the rootwrap filters are this
package's ``etc/`` files, installed with this stack's paths: the store's
``rootwrap.conf`` (this package's filters: two privsep daemons, nothing
else) is all that user may run as root.

The in-tree driver (``intree``, for comparison) needs ``chown`` of any
device as root (glance_store's filters): giving that to the glance user
would undo the above. Its backends therefore live in a glance-api of their
own, ``glance-api-intree``, run by a user of its own (``glance-intree``)
whose sudoers rule allows only ``rootwrap-intree.conf``; it serves the same
database, so its images are listed by both.

A second glance-api, ``glance-api-locations``, serves the same database and
stores with ``show_multiple_locations = True``: the setting OSSN-0065 warns
about, under which users may add locations. The tests run the attacks it
allows there; the default instance keeps Glance's defaults.

``glance-api-b`` is a second glance-api *host*: the default instance's
configuration, database, Keystone, Cinder and Ceph, in UTS, PID and mount
namespaces of its own (``unshare``) with host name ``glance-b``, so that
os-brick's connector and Cinder's attachments name another host, and with
a lock path and state directories of its own, as a second machine (or a
container) behind a load balancer would have.
"""

import grp
import os
import pwd
import shutil
import signal

from harness import procfs
from harness.stack import service

#: The system user glance-api runs as.
USER = os.environ.get('CINDER_EXT_GLANCE_USER', 'glance')
#: The system user of the in-tree driver's glance-api.
INTREE_USER = os.environ.get('CINDER_EXT_GLANCE_INTREE_USER',
                             'glance-intree')
SUDOERS = '/etc/sudoers.d/cinder-ext-stack-glance'
#: cinder_ext_spare_volumes of this store's backends (default 0, off; the
#: load run's small-image table measures it: tools/load.sh --help).
SPARE_VOLUMES = int(os.environ.get('CINDER_EXT_SPARE_VOLUMES') or 0)
SUDOERS_INTREE = '/etc/sudoers.d/cinder-ext-stack-glance-intree'
SYSTEM_PYTHON = '/usr/bin/python3.11'
#: sudo looks commands up on its secure_path; the in-tree driver runs
#: "sudo glance-rootwrap ..." by name.
ROOTWRAP_LINK = '/usr/local/bin/glance-rootwrap'

#: backend -> (store type, volume type, extend attached, description)
BACKENDS = {
    'images': ('cinder_ext', 'loop', True, 'cinder_ext'),
    'offline': ('cinder_ext', 'loop-offline', False, 'cinder_ext'),
    'multiattach': ('cinder_ext', 'loop-multiattach', True,
                    'cinder_ext, read by several hosts at once'),
    'intree': ('cinder', 'loop', True,
               'in-tree cinder driver, for comparison'),
}
#: With Ceph: the same three on Cinder's rbd backend, and glance_store's
#: own rbd store (what an operator would pick instead of a Cinder store).
RBD_BACKENDS = {
    'rbd': ('cinder_ext', 'rbd', True, 'cinder_ext on Ceph'),
    'rbd-offline': ('cinder_ext', 'rbd', False, 'cinder_ext on Ceph'),
    'rbd-multiattach': ('cinder_ext', 'rbd-multiattach', True,
                        'cinder_ext on Ceph, read by several hosts at once'),
    'rbd-intree': ('cinder', 'rbd', True,
                   'in-tree cinder driver on Ceph, for comparison'),
    'rbd-glance': ('rbd', None, None, "glance_store's rbd store"),
}
DEFAULT_BACKEND = 'images'


# What a glance-api host needs beside glance-api.conf, as functions of its
# paths: the DevStack plugin (devstack/plugin.sh) writes the same, and its
# test compares the two.

def sudoers_rule(user, commands, rootwrap_config):
    """The package's sudoers example for ``user`` and these rootwrap paths.

    :param commands: the paths of ``glance-rootwrap`` the user may run
    :param rootwrap_config: the one rootwrap configuration they may use
    """
    with open(os.path.join(service.REPO, 'etc', 'sudoers.d',
                           'glance-cinder-ext-store')) as f:
        rule = f.read()
    example = ('glance ALL = (root) NOPASSWD: /usr/bin/glance-rootwrap '
               '/etc/glance/rootwrap.conf *')
    if example not in rule:
        raise service.StackError('etc/sudoers.d/glance-cinder-ext-store '
                                 'no longer holds: %s' % example)
    rule = rule.replace('Defaults:glance', 'Defaults:%s' % user)
    return rule.replace(example, '%s ALL = (root) NOPASSWD: %s' % (
        user, ', '.join('%s %s *' % (cmd, rootwrap_config)
                        for cmd in commands)))


def rootwrap_conf(filters_dir, bin_dir):
    """A rootwrap.conf applying the filters of ``filters_dir``."""
    return ('[DEFAULT]\nfilters_path = %s\nexec_dirs = %s,'
            '/sbin,/usr/sbin,/bin,/usr/bin\nuse_syslog = False\n'
            % (filters_dir, bin_dir))


def helper_command(rootwrap, rootwrap_config):
    """How a non-root glance-api starts a privsep daemon."""
    return 'sudo %s %s privsep-helper' % (rootwrap, rootwrap_config)


class Glance(service.UwsgiService):
    name = 'glance-api'
    venv_name = 'glance'
    module = 'glance.wsgi.api:application'
    #: Several worker processes, as production runs glance-api.
    workers = 2

    #: Extra [DEFAULT] settings of this instance.
    extra_defaults = ''
    run_as = USER

    def __init__(self, settings, keystone, postgres, ceph=None):
        super(Glance, self).__init__(settings)
        self.keystone = keystone
        self.postgres = postgres
        self.ceph = ceph

    #: The sudoers rule of this instance's user.
    sudoers = SUDOERS
    #: Which store types this instance serves: not the in-tree driver's
    #: (see GlanceIntree).
    store_types = ('cinder_ext', 'rbd')
    default_backend = DEFAULT_BACKEND

    @property
    def backends(self):
        every = dict(BACKENDS, **(RBD_BACKENDS if self.ceph else {}))
        return {name: backend for name, backend in every.items()
                if backend[0] in self.store_types}

    @property
    def rootwrap_store(self):
        """The store type whose rootwrap.conf this user may sudo."""
        return 'cinder_ext'

    @property
    def port(self):
        return self.s.glance_port

    @property
    def etc(self):
        return os.path.join(self.dir, 'etc')

    @property
    def dir(self):
        return self.s.path('glance')

    @property
    def log_file(self):
        return os.path.join(self.s.logs, 'glance-api.log')

    def install(self):
        venv = self.s.venv('glance')
        # Debian's Python, as a distribution's glance-api: the glance user
        # must be able to run the interpreter (pyenv's lives under /root).
        service.apt_install([p for p in ('python3-venv', 'python3-dev')
                             if not service.deb_installed(p)],
                            recommends=False)
        service.make_venv(venv, 'uwsgi', [
            self.s.pins['glance'], 'uwsgi', 'python-glanceclient',
            'python-openstackclient', 'psycopg2-binary'],
            self.s.path('pip.log'), python=SYSTEM_PYTHON)
        # The store under test, from this checkout (every time: cheap, and
        # picks up new entry points).
        service.pip_install(venv, [
            '-c', os.path.join(service.REPO, 'tools', 'constraints.txt'),
            '-e', service.REPO], self.s.path('pip.log'))
        if self.ceph:
            self.ceph.add_to_venv(venv)
        self._install_user()

    def _install_user(self):
        """The glance user, sudo, and the one sudoers rule it gets."""
        user = self.run_as
        if not service.have_command('sudo'):
            service.apt_install(['sudo'], recommends=False)
        try:
            pwd.getpwnam(user)
        except KeyError:
            service.log('creating system user %s' % user)
            service.run(['useradd', '--system', '--user-group',
                         '--no-create-home', '--home-dir', self.dir,
                         '--shell', '/usr/sbin/nologin', user])
        rootwrap = os.path.join(self.s.venv('glance'), 'bin',
                                'glance-rootwrap')
        if os.path.realpath(ROOTWRAP_LINK) != rootwrap:
            if os.path.lexists(ROOTWRAP_LINK):
                os.unlink(ROOTWRAP_LINK)
            os.symlink(rootwrap, ROOTWRAP_LINK)
        # One rootwrap configuration: this instance's.
        rule = sudoers_rule(user, (rootwrap, ROOTWRAP_LINK),
                            self.rootwrap_config(self.rootwrap_store))
        candidate = self.sudoers + '.new'
        with open(candidate, 'w') as f:
            f.write(rule)
        os.chmod(candidate, 0o440)
        service.run(['visudo', '-c', '-q', '-f', candidate])
        os.rename(candidate, self.sudoers)

    def url(self):
        return 'http://127.0.0.1:%d/versions' % self.port

    def uwsgi_options(self):
        # Chunked uploads: uWSGI must accept chunked bodies above 1 MiB.
        # A client that reads slowly (or a test that holds a download open)
        # must not be cut off after uWSGI's default 4 s socket timeout.
        return ['--env', 'OS_GLANCE_CONFIG_DIR=%s' % self.etc,
                '--http-auto-chunked', '--http-chunked-input',
                '--http-raw-body', '--chunked-input-limit', '16777216',
                '--socket-timeout', '300']

    def rootwrap_config(self, store):
        return os.path.join(self.etc, 'rootwrap.conf' if store == 'cinder_ext'
                            else 'rootwrap-intree.conf')

    def _write_rootwrap(self):
        """rootwrap.conf + filters: this package's, and the in-tree's."""
        filters = {
            'cinder_ext': os.path.join(service.REPO, 'etc', 'glance',
                                       'rootwrap.d',
                                       'cinder_ext_store.filters'),
            'cinder': os.path.join(self.s.venv('glance'), 'etc', 'glance',
                                   'rootwrap.d',
                                   'glance_cinder_store.filters')}
        for store, source in filters.items():
            conf = self.rootwrap_config(store)
            d = conf[:-len('.conf')] + '.d'
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            shutil.copy(source, d)
            if store == 'cinder':
                # os-brick's privsep daemon as this stack starts it
                # (helper_command; glance_store's filter wants an /etc
                # config file).
                shutil.copy(filters['cinder_ext'], d)
            with open(conf, 'w') as f:
                f.write(rootwrap_conf(d, os.path.join(self.s.venv('glance'),
                                                      'bin')))

    def _own(self, paths, mode=None):
        """Give ``paths`` to the glance user (``mode``: only readable)."""
        entry = pwd.getpwnam(self.run_as)
        for path in paths:
            if mode is None:
                os.chown(path, entry.pw_uid, entry.pw_gid)
            else:
                os.chown(path, 0, grp.getgrnam(self.run_as).gr_gid)
                os.chmod(path, mode)

    def _backend(self, name, store, vtype, extend, description):
        if store == 'rbd':
            return service.render('glance-backend-rbd.conf', name=name,
                                  description=description,
                                  ceph_conf=self.ceph.conf)
        section = service.render(
            'glance-backend-cinder.conf', name=name, vtype=vtype,
            description=description, auth_url=self.s.auth_url,
            password=self.s.SERVICE_PASSWORD, extend=extend,
            rootwrap=self.rootwrap_config(store))
        if store == 'cinder_ext' and SPARE_VOLUMES:
            section += 'cinder_ext_spare_volumes = %d\n' % SPARE_VOLUMES
        return section

    @property
    def lock_path(self):
        return os.path.join(self.dir, 'lock')

    def _write_config(self):
        etc = self.etc
        lock = self.lock_path
        # glance owns its state, not the directory above the
        # configuration: else it could swap rootwrap.conf for its own.
        state = [lock, os.path.join(self.dir, 'staging'),
                 os.path.join(self.dir, 'tasks')]
        for sub in [etc] + state:
            os.makedirs(sub, exist_ok=True)
        open(self.log_file, 'a').close()
        self._own(state + [self.log_file])
        self._write_rootwrap()
        shutil.copy(os.path.join(self.s.venv('glance'), 'etc', 'glance',
                                 'glance-api-paste.ini'), etc)
        sections = ''.join(self._backend(name, store, vtype, extend, what)
                           for name, (store, vtype, extend, what)
                           in self.backends.items())
        with open(os.path.join(etc, 'glance-api.conf'), 'w') as f:
            f.write(service.render(
                'glance-api.conf',
                backends=','.join('%s:%s' % (name, spec[0])
                                  for name, spec in self.backends.items()),
                log=self.log_file, dir=self.dir,
                self_url='http://127.0.0.1:%d' % self.port,
                default=self.default_backend,
                extra=self.extra_defaults, db=self.postgres.url('glance'),
                sections=sections,
                authtoken=self.keystone.authtoken('glance'),
                lock=lock, helper=helper_command(
                    os.path.join(self.s.venv('glance'), 'bin',
                                 'glance-rootwrap'),
                    self.rootwrap_config(self.rootwrap_store))))
        # Secrets inside: readable by the glance group only.
        self._own([os.path.join(etc, name) for name in os.listdir(etc)
                   if name.endswith(('.conf', '.ini'))], mode=0o640)

    def start(self):
        self._write_config()
        self.sync_db()
        self.spawn_uwsgi(self.port)
        service.wait_for(60, 'glance-api', self.healthy)

    def sync_db(self):
        manage = [os.path.join(self.s.venv('glance'), 'bin', 'glance-manage'),
                  '--config-dir', self.etc]
        service.run(manage + ['db_sync'])
        # Glance's metadata definitions, as DevStack loads them (existing
        # namespaces are kept).
        service.run(manage + ['db', 'load_metadefs', '--path', os.path.join(
            self.s.venv('glance'), 'etc', 'glance', 'metadefs')])

    def worker_pids(self):
        """The uWSGI workers' pids (the master's children)."""
        return procfs.children(self.pid())

    def describe(self):
        return ('glance:    %s (backends %s; default %s)'
                % (self.s.glance_url, ', '.join(self.backends),
                   self.default_backend))


class GlanceLocations(Glance):
    """The same Glance with users allowed to add locations (OSSN-0065)."""

    name = 'glance-api-locations'
    workers = 1
    extra_defaults = 'show_multiple_locations = True'

    @property
    def port(self):
        return self.s.glance_port + 1

    # Not the in-tree driver either (the default instance's stores): where
    # users add locations, one tagged with it would bypass this store's
    # ownership checks (its get_size and delete check nothing);
    # cinder-ext-store check warns of it.

    @property
    def etc(self):
        return os.path.join(self.dir, 'etc-locations')

    @property
    def log_file(self):
        return os.path.join(self.s.logs, 'glance-api-locations.log')

    def install(self):
        pass  # the venv of glance-api

    def sync_db(self):
        pass  # glance-api's database, synced by it

    def describe(self):
        return ('glance:    http://127.0.0.1:%d (same images, the stores but '
                'the in-tree ones, show_multiple_locations = True; for the '
                'location tests)' % self.port)


class GlanceIntree(Glance):
    """The in-tree cinder driver's own glance-api, for comparisons.

    Same database, Keystone and Cinder; its own user (``glance-intree``),
    state, lock path and sudoers rule (``rootwrap-intree.conf`` only), so
    that the chown the in-tree driver needs is never the glance user's.
    """

    name = 'glance-api-intree'
    workers = 2
    run_as = INTREE_USER
    sudoers = SUDOERS_INTREE
    store_types = ('cinder',)
    default_backend = 'intree'

    @property
    def rootwrap_store(self):
        return 'cinder'

    @property
    def port(self):
        return self.s.glance_port + 2

    @property
    def dir(self):
        return self.s.path('glance-intree')

    @property
    def log_file(self):
        return os.path.join(self.s.logs, 'glance-api-intree.log')

    def install(self):
        self._install_user()  # the venv of glance-api

    def sync_db(self):
        pass  # glance-api's database, synced by it

    def describe(self):
        return ('glance:    http://127.0.0.1:%d (the in-tree driver: %s; '
                'user %s, for comparisons)'
                % (self.port, ', '.join(self.backends), self.run_as))


class GlanceSecondHost(Glance):
    """The default glance-api as a second host (see the module's doc).

    uWSGI is the first process of its own PID namespace (so that killing
    it takes every process of the host with it, privsep daemons
    included); ``unshare`` is the recorded pid and passes its SIGTERM on.
    It drops to the glance user after it set the host name, and reaches
    root as the first instance does: the same sudoers rule and
    rootwrap.conf.
    """

    name = 'glance-api-b'
    hostname = 'glance-b'
    #: Not the first instance's recorded pid: uWSGI, the first process of
    #: the host's PID namespace, is unshare's child (see stop).

    def __init__(self, settings, keystone, postgres, ceph=None,
                 first=None):
        super(GlanceSecondHost, self).__init__(settings, keystone, postgres,
                                               ceph)
        self.first = first

    @property
    def port(self):
        return self.s.glance_port + 3

    @property
    def dir(self):
        return self.s.path('glance-b')

    @property
    def log_file(self):
        return os.path.join(self.s.logs, 'glance-api-b.log')

    def rootwrap_config(self, store):
        return self.first.rootwrap_config(store)

    def _write_rootwrap(self):
        pass  # the first instance's

    def install(self):
        pass  # the venv, user and sudoers rule of the first instance

    def sync_db(self):
        pass

    def spawn_uwsgi(self, port):
        if self.alive():
            return
        entry = pwd.getpwnam(self.run_as)
        env = dict(os.environ, HOME=entry.pw_dir, USER=self.run_as,
                   LOGNAME=self.run_as)
        inner = ['setpriv', '--reuid', str(entry.pw_uid), '--regid',
                 str(entry.pw_gid), '--clear-groups', '--'] + \
            self.uwsgi_command(port)
        self.spawn(['unshare', '--uts', '--pid', '--mount', '--fork',
                    '--mount-proc', '--kill-child=SIGTERM', '--',
                    'sh', '-c', 'hostname "$0" && exec "$@"',
                    self.hostname] + inner, self.log_file, env=env)

    def stop(self):
        # unshare ignores SIGTERM while it waits for its child: uWSGI's
        # master gets it, and unshare ends with it.
        master = self.init_pid()
        if master is not None:
            try:
                os.kill(master, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                service.wait_for(30, 'glance-api-b to stop',
                                 lambda: not self.alive())
            except service.StackError as e:
                service.log('%s; killing it' % e)
        self.kill_recorded(self.name)

    def init_pid(self):
        """The host's first process (uWSGI's master), as the host sees 1."""
        found = procfs.children(self.pid()) if self.pid() else []
        return found[0] if found else None

    def worker_pids(self):
        master = self.init_pid()
        return procfs.children(master) if master else []

    def describe(self):
        return ('glance:    http://127.0.0.1:%d (a second glance-api host: '
                'host name %s, its own PID, UTS and mount namespaces and '
                'lock path %s; same stores)'
                % (self.port, self.hostname, self.lock_path))
