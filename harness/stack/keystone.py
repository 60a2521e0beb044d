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

"""Keystone 30 under uWSGI (PostgreSQL, fernet), laid out as DevStack does.

Project ``service`` with users ``glance`` and ``cinder``, users ``demo``
and ``alt_demo`` in projects of their names, catalog entries for
``volumev3``, ``image`` and ``volumev3-faults`` (Cinder through the fault
tests' proxy).
"""

import os

from harness.stack import rest
from harness.stack import service


class Keystone(service.UwsgiService):
    name = 'keystone'
    venv_name = 'keystone'
    module = 'keystone.wsgi.api:application'

    def __init__(self, settings, postgres):
        super(Keystone, self).__init__(settings)
        self.postgres = postgres

    @property
    def dir(self):
        return self.s.path('keystone')

    def install(self):
        service.make_venv(self.s.venv('keystone'), 'uwsgi',
                          [self.s.pins['keystone'], 'uwsgi',
                           'psycopg2-binary'],
                          self.s.path('pip.log'))

    def url(self):
        return self.s.auth_url

    def uwsgi_options(self):
        return ['--env', 'OS_KEYSTONE_CONFIG_DIR=%s' % self.dir]

    def _write_config(self):
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, 'keystone.conf'), 'w') as f:
            f.write(service.render(
                'keystone.conf', dir=self.dir,
                log=os.path.join(self.s.logs, 'keystone.log'),
                db=self.postgres.url('keystone')))

    def _bootstrap(self):
        """Schema, keys, admin: each step is a no-op once done."""
        manage = [os.path.join(self.s.venv('keystone'), 'bin',
                               'keystone-manage'), '--config-file',
                  os.path.join(self.dir, 'keystone.conf')]
        owner = ['--keystone-user', 'root', '--keystone-group', 'root']
        keys = [] if os.path.isdir(os.path.join(self.dir, 'fernet-keys')) \
            else [['fernet_setup'] + owner, ['credential_setup'] + owner]
        bootstrap = ['bootstrap', '--bootstrap-password',
                     self.s.ADMIN_PASSWORD,
                     '--bootstrap-admin-url', self.s.auth_url,
                     '--bootstrap-public-url', self.s.auth_url,
                     '--bootstrap-internal-url', self.s.auth_url,
                     '--bootstrap-region-id', 'RegionOne']
        for args in [['db_sync']] + keys + [bootstrap]:
            service.run(manage + args)

    def start(self):
        self._write_config()
        self._bootstrap()
        self.spawn_uwsgi(self.s.keystone_port)
        service.wait_for(60, 'Keystone', self.healthy)
        self._identity()

    def admin(self):
        """(client, project id) of the bootstrap admin."""
        return rest.keystone_login(self.s.auth_url, 'admin',
                                   self.s.ADMIN_PASSWORD, 'admin')

    def _identity(self):
        ident = rest.Identity(self.admin()[0], self.s.auth_url)
        service_project = ident.project('service')
        demo = ident.project('demo')
        # As production: Glance's service user is a member of the service
        # project with the service role, not an admin (its store creates,
        # attaches, extends and deletes volumes of that project only).
        # Cinder's own service user is an admin, as DevStack makes it.
        ident.user('glance', self.s.SERVICE_PASSWORD, service_project,
                   ('member', 'service'))
        ident.user('cinder', self.s.SERVICE_PASSWORD, service_project,
                   ('admin', 'service'))
        ident.user('demo', self.s.DEMO_PASSWORD, demo, ('member', 'reader'))
        # A user of another project, as DevStack's alt_demo.
        ident.user('alt_demo', self.s.DEMO_PASSWORD,
                   ident.project('alt_demo'), ('member', 'reader'))
        ident.service('volumev3', 'cinderv3',
                      self.s.cinder_base + '/$(project_id)s')
        ident.service('image', 'glance', self.s.glance_url)
        # Cinder through the fault tests' proxy (harness.faults), reached
        # by a store with cinder_catalog_info = volumev3-faults::publicURL.
        ident.service('volumev3-faults', 'cinderv3-faults',
                      self.s.faults_base + '/$(project_id)s')

    def internal_tenant(self):
        """(project id, user id) for Cinder's internal tenant.

        As DevStack sets it: the service project, with Cinder's own user.
        Image volumes Cinder makes there (upload-to-image with
        image_upload_use_internal_tenant) are visible to Glance's store,
        whose non-admin service user is a member of that project.
        """
        ident = rest.Identity(self.admin()[0], self.s.auth_url)
        return ident.project('service'), ident.user_id('cinder')

    def authtoken(self, user):
        """The [keystone_authtoken] section for service user user."""
        return service.render('authtoken.conf', auth_url=self.s.auth_url,
                              user=user, password=self.s.SERVICE_PASSWORD)
