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
re-attach) and ``intree`` (glance_store's own cinder driver, for
comparison). The stores use service credentials, as production does.

A second glance-api, ``glance-api-locations``, serves the same database and
stores with ``show_multiple_locations = True``: the setting OSSN-0065 warns
about, under which users may add locations. The tests run the attacks it
allows there; the default instance keeps Glance's defaults.
"""

import os
import shutil

from harness.stack import service

#: backend -> (store type, volume type, extend attached, description)
BACKENDS = {
    'images': ('cinder_ext', 'loop', True, 'cinder_ext'),
    'offline': ('cinder_ext', 'loop-offline', False, 'cinder_ext'),
    'intree': ('cinder', 'loop', True,
               'in-tree cinder driver, for comparison'),
}
#: With Ceph: the same three on Cinder's rbd backend, and glance_store's
#: own rbd store (what an operator would pick instead of a Cinder store).
RBD_BACKENDS = {
    'rbd': ('cinder_ext', 'rbd', True, 'cinder_ext on Ceph'),
    'rbd-offline': ('cinder_ext', 'rbd', False, 'cinder_ext on Ceph'),
    'rbd-intree': ('cinder', 'rbd', True,
                   'in-tree cinder driver on Ceph, for comparison'),
    'rbd-glance': ('rbd', None, None, "glance_store's rbd store"),
}
DEFAULT_BACKEND = 'images'


class Glance(service.UwsgiService):
    name = 'glance-api'
    venv_name = 'glance'
    module = 'glance.wsgi.api:application'
    #: Several worker processes, as production runs glance-api.
    workers = 2

    #: Extra [DEFAULT] settings of this instance.
    extra_defaults = ''

    def __init__(self, settings, keystone, postgres, ceph=None):
        super(Glance, self).__init__(settings)
        self.keystone = keystone
        self.postgres = postgres
        self.ceph = ceph

    @property
    def backends(self):
        return dict(BACKENDS, **(RBD_BACKENDS if self.ceph else {}))

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
        service.make_venv(venv, 'uwsgi', [
            self.s.pins['glance'], 'uwsgi', 'python-glanceclient',
            'python-openstackclient', 'psycopg2-binary'],
            self.s.path('pip.log'))
        # The store under test, from this checkout (every time: cheap, and
        # picks up new entry points).
        service.pip_install(venv, [
            '-c', os.path.join(service.REPO, 'tools', 'constraints.txt'),
            '-e', service.REPO], self.s.path('pip.log'))
        if self.ceph:
            self.ceph.add_to_venv(venv)

    def url(self):
        return 'http://127.0.0.1:%d/versions' % self.port

    def uwsgi_options(self):
        # Chunked uploads: uWSGI must accept chunked bodies above 1 MiB.
        return ['--env', 'OS_GLANCE_CONFIG_DIR=%s' % self.etc,
                '--http-auto-chunked', '--http-chunked-input',
                '--http-raw-body', '--chunked-input-limit', '16777216']

    def _backend(self, name, store, vtype, extend, description):
        if store == 'rbd':
            return ('[%s]\nstore_description = Ceph pool images (%s)\n'
                    'rbd_store_pool = images\nrbd_store_user = glance\n'
                    'rbd_store_ceph_conf = %s\n'
                    % (name, description, self.ceph.conf))
        return ('[%s]\nstore_description = Cinder volumes of type %s (%s)\n'
                'cinder_store_auth_address = %s\n'
                'cinder_store_user_name = glance\n'
                'cinder_store_password = %s\n'
                'cinder_store_project_name = service\n'
                'cinder_store_user_domain_name = Default\n'
                'cinder_store_project_domain_name = Default\n'
                'cinder_volume_type = %s\ncinder_do_extend_attached = %s\n'
                'cinder_state_transition_timeout = 120\n'
                % (name, vtype, description, self.s.auth_url,
                   self.s.SERVICE_PASSWORD, vtype, extend))

    @property
    def lock_path(self):
        return os.path.join(self.dir, 'lock')

    def _write_config(self):
        etc = self.etc
        lock = self.lock_path
        for sub in (etc, lock, os.path.join(self.dir, 'staging'),
                    os.path.join(self.dir, 'tasks')):
            os.makedirs(sub, exist_ok=True)
        shutil.copy(os.path.join(self.s.venv('glance'), 'etc', 'glance',
                                 'glance-api-paste.ini'), etc)
        sections = ''.join(self._backend(name, store, vtype, extend, what)
                           for name, (store, vtype, extend, what)
                           in self.backends.items())
        with open(os.path.join(etc, 'glance-api.conf'), 'w') as f:
            f.write("""[DEFAULT]
enabled_backends = %(backends)s
log_file = %(log)s
debug = True
%(extra)s
[database]
connection = %(db)s
[glance_store]
default_backend = %(default)s
[os_glance_staging_store]
filesystem_store_datadir = %(dir)s/staging
[os_glance_tasks_store]
filesystem_store_datadir = %(dir)s/tasks
%(sections)s
%(authtoken)s
[paste_deploy]
flavor = keystone
[oslo_concurrency]
lock_path = %(lock)s
[os_brick]
lock_path = %(lock)s
# Root service without sudo: start privsep directly (the in-tree driver
# would otherwise prefix sudo).
[privsep_osbrick]
helper_command = %(venv)s/bin/privsep-helper
""" % dict(
                backends=','.join('%s:%s' % (name, spec[0])
                                  for name, spec in self.backends.items()),
                log=self.log_file, dir=self.dir, default=DEFAULT_BACKEND,
                extra=self.extra_defaults, db=self.postgres.url('glance'),
                sections=sections,
                authtoken=self.keystone.authtoken('glance'),
                lock=lock, venv=self.s.venv('glance')))

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
        master = self.pid()
        try:
            with open('/proc/%d/task/%d/children' % (master, master)) as f:
                return [int(p) for p in f.read().split()]
        except (OSError, TypeError):
            return []

    def describe(self):
        return ('glance:    %s (backends %s; default %s)'
                % (self.s.glance_url, ', '.join(self.backends),
                   DEFAULT_BACKEND))


class GlanceLocations(Glance):
    """The same Glance with users allowed to add locations (OSSN-0065)."""

    name = 'glance-api-locations'
    workers = 1
    extra_defaults = 'show_multiple_locations = True'

    @property
    def port(self):
        return self.s.glance_port + 1

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
        return ('glance:    http://127.0.0.1:%d (same images and stores, '
                'show_multiple_locations = True; for the location tests)'
                % self.port)
