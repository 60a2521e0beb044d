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

"""One concurrent reader of the benchmark, in a process of its own.

    python -m harness.bench.reader <ours|intree> <uri>

Loads the stores, prints ``ready``, reads the image when told ``go`` on
stdin and prints what it measured as one JSON line.
"""

import json
import logging
import sys

from harness.bench import workload
from harness import clouds
from harness import stores


def main(who, uri):
    logging.basicConfig(level=logging.ERROR)
    cloud = clouds.load()
    conf = stores.load(cloud, workload.backends(cloud), 'ours')
    loc = stores.location(conf, uri, who)
    # Warm, like a long-lived glance-api worker: a Keystone token and
    # (ours) os-brick's connector properties in hand.
    store = stores.get(who)
    store.get_size(loc)
    if hasattr(store, 'host'):  # ours: the os-brick host wrapper
        store.host.connector_properties()
    print('ready', flush=True)
    sys.stdin.readline()
    print(json.dumps(workload.read_once(store, loc)), flush=True)


if __name__ == '__main__':
    main(*sys.argv[1:3])
