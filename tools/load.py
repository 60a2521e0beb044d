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

"""Load run against the local stack (see harness/load.py).

    tools/load.sh [--duration 600] [--clients 6] [--no-chaos]
                  [--large-share 0.1] [--small-mib 1,64]
                  [--mix upload=25,download=45,...] [--json load.json]
    tools/load.sh --small 30     # 1 MiB images: this store vs in-tree

``CINDER_EXT_SPARE_VOLUMES=N`` at ``tools/stack up`` (after a ``down``)
gives the store's glance-api backends N spare volumes per worker
(``cinder_ext_spare_volumes``): the small table then measures them.
``CINDER_EXT_STORAGE=rbd`` runs it on the stack's Ceph backend. Exit
status 1 when an unexpected error, a corrupt download or a leak was seen.
"""

import argparse
import json
import logging
import sys

from harness import clouds
from harness import glance
from harness import load


def _mib_range(text):
    low, _, high = text.partition(',')
    try:
        low, high = int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError('LOW,HIGH in MiB, e.g. 1,8')
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError('need 0 < LOW <= HIGH')
    return low, high


def _mix(text):
    mix = {}
    for part in text.split(','):
        name, _, weight = part.partition('=')
        if name not in load.MIX:
            raise argparse.ArgumentTypeError(
                'unknown operation %r (one of %s)' % (
                    name, ', '.join(sorted(load.MIX))))
        try:
            mix[name] = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError('%s=WEIGHT' % name)
    return mix


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--duration', type=float, default=600,
                        help='seconds of load (default 600)')
    parser.add_argument('--clients', type=int, default=6)
    parser.add_argument('--keep', type=int, default=3,
                        help='images each client keeps')
    parser.add_argument('--large-share', type=float, default=0.1,
                        help='share of 0.5-2 GiB images (default 0.1)')
    parser.add_argument('--small-mib', type=_mib_range, default=(1, 64),
                        metavar='LOW,HIGH',
                        help='size range of the small images (default 1,64)')
    parser.add_argument('--mix', type=_mix, default=dict(load.MIX),
                        metavar='OP=WEIGHT,...',
                        help='operations and weights (default %s)' % ','.join(
                            '%s=%s' % kv for kv in load.MIX.items()))
    parser.add_argument('--intree', action='store_true',
                        help='the same load through the in-tree driver\'s '
                             'glance-api and backend (with --no-chaos), '
                             'for comparison')
    parser.add_argument('--no-chaos', action='store_true',
                        help='no cinder-volume restart, no worker kill')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default='load.json')
    parser.add_argument('--small', type=int, metavar='CYCLES',
                        help='instead of the load: the fixed costs of '
                             'CYCLES 1 MiB create-upload-download-delete '
                             'cycles, this store against the in-tree '
                             'driver, interleaved')
    args = parser.parse_args()
    cloud = clouds.full_stack('the load run')
    logging.basicConfig(level=logging.WARNING)
    facts = cloud.storage_facts
    if args.small:
        user = cloud.user()
        cases = [('ours', glance.GlanceUser(user),
                  facts.glance_backend or 'images'),
                 ('in-tree', glance.GlanceUser(user,
                                               cloud.facts.glance.intree_url),
                  facts.glance_backend_intree or 'intree')]
        found = load.small_cycles(cloud, cases, args.small)
        print('%d cycles of each case, interleaved, after 4 warm-up cycles '
              'each (not counted)' % args.small)
        print(load.small_table(found))
        with open(args.json, 'w') as f:
            json.dump(found, f, indent=1)
        return
    settings = load.Settings(duration=args.duration, clients=args.clients,
                             keep=args.keep, large_share=args.large_share,
                             small_mib=args.small_mib, mix=args.mix,
                             chaos=not args.no_chaos, seed=args.seed,
                             intree=args.intree)
    if args.intree and not args.no_chaos:
        parser.error('--intree needs --no-chaos')
    backend = ((facts.glance_backend_intree or 'intree') if args.intree
               else (facts.glance_backend or 'images'))
    result = load.run(cloud, backend, facts.volume_type, settings)
    report = load.summary(result)
    print(load.table(report))
    with open(args.json, 'w') as f:
        json.dump(report, f, indent=1)
    print('raw results: %s' % args.json)
    sys.exit(1 if (report['unexpected_errors'] or
                   report['corrupt_downloads'] or report['leaks']) else 0)


if __name__ == '__main__':
    main()
