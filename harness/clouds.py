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

"""``clouds.yaml``: the one description of the cloud everything talks to.

The stack writes a standard ``clouds.yaml`` (the openstacksdk /
os-client-config format) with four clouds: ``cinder-ext-store`` (the
credentials the store uses, as Glance's ``cinder_store_*`` options would),
``cinder-ext-demo`` and ``cinder-ext-alt`` (ordinary users of two projects)
and ``cinder-ext-admin``. Tests,
demo and benchmark read it like any OpenStack client:

* ``OS_CLIENT_CONFIG_FILE`` - the file (default: the stack's, else the
  standard search path);
* ``OS_CLOUD`` - the cloud whose credentials the store uses (default
  ``cinder-ext-store``);
* ``CINDER_EXT_USER_CLOUD`` - the ordinary user of end-to-end tests;
* ``CINDER_EXT_VOLUME_TYPE`` / ``CINDER_EXT_VOLUME_TYPE_NO_ONLINE_EXTEND``
  / ``CINDER_EXT_VOLUME_TYPE_MULTIATTACH`` - volume types to test on;
* ``CINDER_EXT_STORAGE`` - the storage the suites run on: ``loop``
  (default) or ``rbd``; its volume types and Glance backends are
  :attr:`Cloud.storage_facts`, so the same tests run on either.

What the stack knows beyond credentials (volume types per storage, its
glance-api instances, file paths) is a :class:`~harness.facts.Facts`, in
the store cloud's ``cinder_ext_store`` key (:attr:`Cloud.facts`). Writing
needs only the standard library; reading needs PyYAML and keystoneauth,
imported when used.
"""

import dataclasses
import json
import os

from harness import facts as facts_mod
from harness.stack import service

STORE_CLOUD = 'cinder-ext-store'
USER_CLOUD = 'cinder-ext-demo'
ALT_CLOUD = 'cinder-ext-alt'
ADMIN_CLOUD = 'cinder-ext-admin'
EXTRAS = 'cinder_ext_store'
#: Sessions made so far, by file, cloud and settings (see Cloud.session).
_SESSIONS = {}
STACK_FILE = os.path.join(
    os.environ.get('CINDER_EXT_STACK_DIR',
                   os.path.join(service.REPO, '.stack')), 'clouds.yaml')
SEARCH_PATH = ('clouds.yaml',
               os.path.expanduser('~/.config/openstack/clouds.yaml'),
               '/etc/openstack/clouds.yaml')


def add_ceph_bindings():
    """Make rados and rbd importable from the local stack's Ceph, if any.

    The stack links Debian's two binding modules into one directory (see
    :mod:`harness.stack.ceph`); adding it does not expose the rest of
    Debian's site-packages.
    """
    import sys
    path = os.path.join(os.path.dirname(STACK_FILE), 'ceph', 'pyceph')
    if os.path.isdir(path) and path not in sys.path:
        sys.path.append(path)


# -- writing (the stack) ------------------------------------------------

def _yaml(value, indent=0):
    pad = ' ' * indent
    lines = []
    for key, item in value.items():
        if isinstance(item, dict):
            lines.append('%s%s:' % (pad, key))
            lines.extend(_yaml(item, indent + 2))
        else:
            # JSON scalars are YAML scalars: quoting stays exact.
            lines.append('%s%s: %s' % (pad, key, json.dumps(item)))
    return lines


def write(path, clouds):
    """Write ``{name: cloud}`` as a ``clouds.yaml`` (mode 0600: passwords)."""
    text = '# Written by tools/stack; read by the tests, demo, benchmark.\n'
    text += '\n'.join(_yaml({'clouds': clouds})) + '\n'
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(text)


def password_cloud(auth_url, user, password, project, facts=None):
    cloud = {'auth_type': 'password',
             'auth': {'auth_url': auth_url, 'username': user,
                      'password': password, 'project_name': project,
                      'user_domain_name': 'Default',
                      'project_domain_name': 'Default'},
             'region_name': 'RegionOne', 'identity_api_version': 3,
             'volume_api_version': 3}
    if facts is not None:
        cloud[EXTRAS] = facts.to_dict()
    return cloud


def token_cloud(endpoint, token, facts=None):
    """Cinder without Keystone (noauth): a fixed token at one endpoint."""
    cloud = {'auth_type': 'admin_token',
             'auth': {'endpoint': endpoint, 'token': token},
             'region_name': 'RegionOne', 'volume_api_version': 3}
    if facts is not None:
        cloud[EXTRAS] = facts.to_dict()
    return cloud


# -- reading (tests, demo, benchmark) -----------------------------------

def config_file():
    """The clouds.yaml in use, or None."""
    path = os.environ.get('OS_CLIENT_CONFIG_FILE')
    if path:
        return path
    for candidate in (STACK_FILE,) + SEARCH_PATH:
        if os.path.exists(candidate):
            return candidate
    return None


class Cloud(object):
    """One cloud of a clouds.yaml, with what the tests need of it."""

    def __init__(self, name, entry, path):
        self.name = name
        self.entry = entry
        self.path = path
        facts = facts_mod.Facts.from_dict(entry.get(EXTRAS))
        # An existing cloud's volume types may come from the environment.
        chosen = {key: os.environ['CINDER_EXT_%s' % key.upper()] for key in (
            'volume_type', 'volume_type_no_online_extend',
            'volume_type_multiattach') if os.environ.get(
                'CINDER_EXT_%s' % key.upper())}
        if chosen:
            storages = dict(facts.storages)
            current = storages.get(self.storage)
            storages[self.storage] = (
                dataclasses.replace(current, **chosen) if current
                else facts_mod.Storage(**chosen))
            facts = dataclasses.replace(facts, storages=storages)
        if os.environ.get('CINDER_EXT_USER_CLOUD'):
            facts = dataclasses.replace(
                facts, user_cloud=os.environ['CINDER_EXT_USER_CLOUD'])
        #: What the stack says of this cloud (a :class:`~harness.facts.
        #: Facts`; empty for a cloud the stack did not write).
        self.facts = facts

    @property
    def auth(self):
        return self.entry.get('auth', {})

    @property
    def keystone(self):
        return self.entry.get('auth_type', 'password') != 'admin_token'

    @property
    def local(self):
        """The local stack (its files are on this host)."""
        return bool(self.facts.stack_dir)

    @property
    def storage(self):
        """``loop`` or ``rbd``: what the suites run on."""
        return os.environ.get('CINDER_EXT_STORAGE', 'loop')

    @property
    def storage_facts(self):
        """The :class:`~harness.facts.Storage` the suites run on, or None.

        None: the cloud says nothing of RBD (a stack started without
        Ceph). A cloud that says nothing of loop (an existing cloud) gets
        Cinder's default type.
        """
        found = self.facts.storages.get(self.storage)
        if found is None and self.storage == 'loop':
            return facts_mod.Storage()
        return found

    def session(self):
        """A keystoneauth session of this cloud, one per process.

        Shared: a token costs Keystone ~0.5 s, which every test paid
        several times over (keystoneauth renews it before it expires).
        """
        key = (self.path, self.name, repr(sorted(self.entry.items())))
        if key not in _SESSIONS:
            _SESSIONS[key] = self._new_session()
        return _SESSIONS[key]

    def new_session(self):
        """A session of its own (a load client's thread), not shared."""
        return self._new_session()

    def _new_session(self):
        from keystoneauth1 import loading
        from keystoneauth1 import session as ksa_session
        loader = loading.get_plugin_loader(
            self.entry.get('auth_type', 'password'))
        options = {o.dest for o in loader.get_options()}
        auth = loader.load_from_options(**{
            k: v for k, v in self.auth.items() if k in options})
        verify = self.entry.get('cacert', not self.entry.get('insecure'))
        return ksa_session.Session(auth=auth, verify=verify)

    def cinder(self, version='3.54', session=None):
        from cinderclient import client
        return client.Client(version, session=session or self.session(),
                             region_name=self.entry.get('region_name'))

    def store_options(self):
        """The store options that reach this cloud's Cinder.

        Glance's ``cinder_store_*``; without Keystone, the endpoint
        template (the request's token is then ``<user>:<project>``).
        """
        if not self.keystone:
            return {'cinder_endpoint_template':
                    self.facts.endpoint_template}
        auth = self.auth
        return {
            'cinder_store_auth_address': auth['auth_url'],
            'cinder_store_user_name': auth['username'],
            'cinder_store_password': auth['password'],
            'cinder_store_project_name': auth['project_name'],
            'cinder_store_user_domain_name': auth.get('user_domain_name',
                                                      'Default'),
            'cinder_store_project_domain_name': auth.get(
                'project_domain_name', 'Default'),
        }

    def user(self):
        """The ordinary user's cloud (end-to-end tests, demo)."""
        return load(self.facts.user_cloud or USER_CLOUD)


def full_stack(what):
    """The store's cloud of the full local stack.

    Exits saying that ``what`` (a command line: the benchmark, the load
    run) needs it when the cloud is not that.
    """
    cloud = load()
    if not cloud.keystone or not cloud.facts.glance:
        raise SystemExit('%s needs the full local stack: tools/stack up'
                         % what)
    return cloud


def load(name=None):
    """The cloud ``name`` (default ``OS_CLOUD``, else the store's)."""
    import yaml
    path = config_file()
    if path is None:
        raise LookupError('no clouds.yaml: run tools/stack up, or set '
                          'OS_CLIENT_CONFIG_FILE')
    name = name or os.environ.get('OS_CLOUD') or STORE_CLOUD
    with open(path) as f:
        clouds = (yaml.safe_load(f) or {}).get('clouds') or {}
    if name not in clouds:
        raise LookupError('cloud %r is not in %s (it has %s)'
                          % (name, path, ', '.join(sorted(clouds))))
    return Cloud(name, clouds[name], path)
