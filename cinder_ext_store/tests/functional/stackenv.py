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

"""What tools/localstack.sh wrote, for the tests, the demo and the benchmark.

No test-framework imports: tools/demo.py and tools/bench.py use it from the
stack's Glance venv.
"""

import os
import re

from keystoneauth1 import identity
from keystoneauth1 import session as ksa_session

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..',
                                    '..'))
STACK_DIR = os.environ.get('CINDER_EXT_STACK_DIR',
                           os.path.join(REPO, '.localstack'))
ENV_FILE = os.path.join(STACK_DIR, 'stack.env')

# cinder_store_<option> <- CINDER_EXT_<key>
_CREDENTIALS = (('auth_address', 'AUTH_URL'), ('user_name', 'USERNAME'),
                ('password', 'PASSWORD'), ('project_name', 'PROJECT_NAME'),
                ('user_domain_name', 'USER_DOMAIN_NAME'),
                ('project_domain_name', 'PROJECT_DOMAIN_NAME'))


def read_env():
    with open(ENV_FILE) as f:
        return dict(line.strip().split('=', 1) for line in f if '=' in line)


def uses_keystone(env):
    """Whether the stack authenticates with Keystone (else noauth)."""
    return env.get('CINDER_EXT_AUTH', 'keystone') != 'noauth'


def store_auth_options(env):
    """Store options reaching this stack's Cinder, as Glance would set them.

    Service credentials with Keystone; in noauth mode the endpoint template
    (the request's token is then ``<user>:<project>``).
    """
    if not uses_keystone(env):
        return {'cinder_endpoint_template':
                env['CINDER_EXT_ENDPOINT_TEMPLATE']}
    return {'cinder_store_' + opt: env['CINDER_EXT_' + key]
            for opt, key in _CREDENTIALS}


def demo_session(env):
    """A keystoneauth session of the stack's ordinary user."""
    return ksa_session.Session(auth=identity.V3Password(
        auth_url=env['CINDER_EXT_AUTH_URL'], username='demo',
        password=env['CINDER_EXT_DEMO_PASSWORD'], project_name='demo',
        user_domain_name='Default', project_domain_name='Default'))


def store_report(env, image_id):
    """The store's log lines (INFO and up) about an image and its volume."""
    with open(env['CINDER_EXT_GLANCE_LOG']) as f:
        lines = [line.rstrip() for line in f
                 if 'cinder_ext_store' in line and ' DEBUG ' not in line]
    keys = {image_id}
    for line in lines:
        if image_id in line:
            keys.update(re.findall(r'in volume ([0-9a-f-]{36})', line))
    return [line.split('] ', 1)[-1] for line in lines
            if any(key in line for key in keys)]
