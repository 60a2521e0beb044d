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

"""Readiness checks and setup for tools/localstack.sh (noauth Cinder).

    localstack_ctl.py ping               the API answers
    localstack_ctl.py pools NAME...      the scheduler sees these pools
    localstack_ctl.py types NAME...      volume types NAME with
                                         volume_backend_name=NAME exist
Exit status 0 when true / done.
"""

import os
import sys

from cinderclient import client
from keystoneauth1 import session
from keystoneauth1 import token_endpoint


def cinder():
    url = os.environ['CINDER_EXT_CINDER_URL']
    project = url.rstrip('/').rsplit('/', 1)[1]
    auth = token_endpoint.Token(url, 'admin:%s' % project)
    return client.Client('3.54', session=session.Session(auth=auth))


def main(argv):
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
