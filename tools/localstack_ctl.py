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

"""Readiness checks and setup for tools/localstack.sh.

    localstack_ctl.py ping               the Cinder API answers
    localstack_ctl.py pools NAME...      the scheduler sees these pools
    localstack_ctl.py types NAME...      volume types NAME with
                                         volume_backend_name=NAME exist
    localstack_ctl.py identity           Keystone projects, users, roles,
                                         services and endpoints exist
Exit status 0 when true / done. Cinder is reached in noauth mode through
CINDER_EXT_CINDER_URL, or through Keystone when CINDER_EXT_AUTH_URL is set
(as admin, with CINDER_EXT_ADMIN_PASSWORD).
"""

import os
import sys
import time

from cinderclient import client
from keystoneauth1 import exceptions as ksa_exc
from keystoneauth1 import identity
from keystoneauth1 import session
from keystoneauth1 import token_endpoint

ENV = os.environ


def admin_session():
    if ENV.get('CINDER_EXT_AUTH_URL'):
        auth = identity.V3Password(
            auth_url=ENV['CINDER_EXT_AUTH_URL'], username='admin',
            password=ENV['CINDER_EXT_ADMIN_PASSWORD'], project_name='admin',
            user_domain_name='Default', project_domain_name='Default')
    else:
        url = ENV['CINDER_EXT_CINDER_URL']
        project = url.rstrip('/').rsplit('/', 1)[1]
        auth = token_endpoint.Token(url, 'admin:%s' % project)
    return session.Session(auth=auth)


def cinder():
    return client.Client('3.54', session=admin_session(),
                         region_name='RegionOne')


class Identity(object):
    """Idempotent Keystone setup, the way DevStack lays it out."""

    def __init__(self):
        self.s = admin_session()
        self.url = ENV['CINDER_EXT_AUTH_URL'].rstrip('/')

    def _call(self, method, path, **kwargs):
        """One request, retried when the connection drops.

        Safe to repeat here: every write is preceded by a lookup.
        """
        for attempt in range(5):
            try:
                return self.s.request('%s/%s' % (self.url, path), method,
                                      **kwargs)
            except ksa_exc.ConnectFailure:
                if attempt == 4:
                    raise
                time.sleep(0.5)

    def _find_or_create(self, kind, name, body, **filters):
        params = dict(name=name, **filters)
        found = self._call('GET', kind, params=params).json()[kind]
        if found:
            return found[0]['id']
        key = kind[:-1]
        body = dict(body, name=name)
        return self._call('POST', kind, json={key: body}).json()[key]['id']

    def project(self, name):
        return self._find_or_create('projects', name,
                                    {'domain_id': 'default'})

    def role(self, name):
        return self._find_or_create('roles', name, {})

    def user(self, name, password, project_id, roles):
        uid = self._find_or_create('users', name, {
            'domain_id': 'default', 'password': password,
            'default_project_id': project_id})
        for role in roles:
            self._call('PUT', 'projects/%s/users/%s/roles/%s' % (
                project_id, uid, self.role(role)))
        return uid

    def service(self, stype, name, url):
        sid = self._find_or_create('services', name, {'type': stype},
                                   type=stype)
        eps = self._call('GET', 'endpoints',
                         params={'service_id': sid}).json()['endpoints']
        have = {e['interface'] for e in eps}
        for iface in ('public', 'internal', 'admin'):
            if iface not in have:
                self._call('POST', 'endpoints', json={'endpoint': {
                    'service_id': sid, 'interface': iface, 'url': url,
                    'region_id': 'RegionOne'}})

    def setup(self):
        password = ENV['CINDER_EXT_SERVICE_PASSWORD']
        service = self.project('service')
        demo = self.project('demo')
        # Glance's store creates, attaches, extends and (on failure)
        # force-deletes volumes in the service project.
        for name in ('glance', 'cinder'):
            self.user(name, password, service, ('admin', 'service'))
        self.user('demo', ENV['CINDER_EXT_DEMO_PASSWORD'], demo,
                  ('member', 'reader'))
        self.service('volumev3', 'cinderv3', ENV['CINDER_EXT_CINDER_CATALOG'])
        self.service('image', 'glance', ENV['CINDER_EXT_GLANCE_URL'])


def main(argv):
    if argv[0] == 'identity':
        Identity().setup()
        return 0
    c = cinder()
    if argv[0] == 'ping':
        c.volumes.list(limit=1)
    elif argv[0] == 'pools':
        seen = {p.name for p in c.pools.list()}
        missing = set(argv[1:]) - seen
        if missing:
            print('pools not yet seen: %s' % sorted(missing))
            return 1
    elif argv[0] == 'types':
        have = {t.name: t for t in c.volume_types.list()}
        for name in argv[1:]:
            vtype = have.get(name) or c.volume_types.create(name)
            # Cinder refuses to change the specs of a type in use.
            if vtype.get_keys().get('volume_backend_name') != name:
                vtype.set_keys({'volume_backend_name': name})
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
