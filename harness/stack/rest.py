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

"""A small JSON-over-HTTP client for the stack's own setup calls.

Keystone's and Cinder's admin calls the stack needs (identity layout,
readiness, volume types) are a handful of requests: the standard library
does them, so the stack tool needs no virtualenv of its own.
"""

import json
import time
import urllib.error
import urllib.request


class HTTPError(Exception):
    def __init__(self, status, method, url, body):
        super(HTTPError, self).__init__('%s %s: HTTP %d %s'
                                        % (method, url, status, body[:300]))
        self.status = status


class Client(object):
    """Requests with one token; retried when the connection drops."""

    def __init__(self, token=None, timeout=30):
        self.token = token
        self.timeout = timeout

    def request(self, method, url, body=None, attempts=5):
        """Returns (decoded JSON body or None, response headers)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {'Content-Type': 'application/json',
                   'Accept': 'application/json'}
        if self.token:
            headers['X-Auth-Token'] = self.token
        for attempt in range(attempts):
            req = urllib.request.Request(url, data=data, method=method,
                                         headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as r:
                    raw = r.read()
                    return (json.loads(raw) if raw else None), r.headers
            except urllib.error.HTTPError as e:
                raise HTTPError(e.code, method, url,
                                e.read().decode(errors='replace'))
            except (urllib.error.URLError, ConnectionError):
                # Safe to repeat: every write here follows a lookup.
                if attempt == attempts - 1:
                    raise
                time.sleep(0.5)

    def get(self, url):
        return self.request('GET', url)[0]

    def post(self, url, body):
        return self.request('POST', url, body)[0]


def keystone_login(auth_url, user, password, project):
    """A client with a project-scoped token; returns (client, project id)."""
    body = {'auth': {
        'identity': {'methods': ['password'], 'password': {'user': {
            'name': user, 'password': password,
            'domain': {'id': 'default'}}}},
        'scope': {'project': {'name': project,
                              'domain': {'id': 'default'}}}}}
    reply, headers = Client().request('POST', auth_url + '/auth/tokens',
                                      body)
    return (Client(headers['X-Subject-Token']),
            reply['token']['project']['id'])


class Identity(object):
    """Idempotent Keystone setup: find each thing, create what is missing."""

    def __init__(self, client, auth_url):
        self.c = client
        self.url = auth_url.rstrip('/')

    def _find_or_create(self, kind, name, body, **filters):
        query = '&'.join('%s=%s' % kv for kv in
                         sorted(dict(name=name, **filters).items()))
        found = self.c.get('%s/%s?%s' % (self.url, kind, query))[kind]
        if found:
            return found[0]['id']
        key = kind[:-1]
        return self.c.post('%s/%s' % (self.url, kind),
                           {key: dict(body, name=name)})[key]['id']

    def user_id(self, name):
        """The id of existing user ``name``."""
        return self.c.get('%s/users?name=%s' % (self.url, name))[
            'users'][0]['id']

    def project(self, name):
        return self._find_or_create('projects', name,
                                    {'domain_id': 'default'})

    def role(self, name):
        return self._find_or_create('roles', name, {})

    def user(self, name, password, project_id, roles):
        uid = self._find_or_create('users', name, {
            'domain_id': 'default', 'password': password,
            'default_project_id': project_id})
        base = '%s/projects/%s/users/%s/roles' % (self.url, project_id, uid)
        for role in roles:
            self.c.request('PUT', '%s/%s' % (base, self.role(role)))
        # Exactly these roles: an older stack may have granted more.
        for held in self.c.get(base)['roles']:
            if held['name'] not in roles:
                self.c.request('DELETE', '%s/%s' % (base, held['id']))
        return uid

    def service(self, stype, name, url):
        sid = self._find_or_create('services', name, {'type': stype},
                                   type=stype)
        have = {e['interface'] for e in self.c.get(
            '%s/endpoints?service_id=%s' % (self.url, sid))['endpoints']}
        for iface in ('public', 'internal', 'admin'):
            if iface not in have:
                self.c.post('%s/endpoints' % self.url, {'endpoint': {
                    'service_id': sid, 'interface': iface, 'url': url,
                    'region_id': 'RegionOne'}})


class CinderAdmin(object):
    """The Cinder calls of the stack's setup, as an admin."""

    def __init__(self, client, url):
        self.c = client
        self.url = url.rstrip('/')

    def ping(self):
        return self.c.get(self.url + '/volumes?limit=1') is not None

    def pools(self):
        reply = self.c.get(self.url + '/scheduler-stats/get_pools')
        return {p['name'] for p in reply['pools']}

    def ensure_type(self, name, extra_specs):
        """Volume type name with (at least) extra_specs."""
        types = {t['name']: t for t in
                 self.c.get(self.url + '/types')['volume_types']}
        vtype = types.get(name) or self.c.post(
            self.url + '/types', {'volume_type': {'name': name}}
        )['volume_type']
        have = vtype.get('extra_specs') or {}
        missing = {k: v for k, v in extra_specs.items() if have.get(k) != v}
        # Cinder refuses to change the specs of a type in use: only write
        # what differs.
        if missing:
            self.c.post('%s/types/%s/extra_specs' % (self.url, vtype['id']),
                        {'extra_specs': missing})
