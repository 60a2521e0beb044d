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

"""Benchmark: cinder_ext vs the in-tree cinder driver vs the hardware.

Runs against the local stack (tools/stack up), in its Glance venv.
Every repetition runs every case once, in the same order (A B A B ...), on
the same volume type; the table shows medians with min-max, and ratios are
computed pair by pair within a repetition. Absolute figures on shared
machines are noise; ratios are what to read.

With ``CINDER_EXT_STORAGE=rbd`` every case runs on the stack's Ceph: the
raw limits are ``rbd bench`` (16 requests in flight, and one) and librbd
from Python with 8 requests in flight (the store's depth; the ``limit`` of
the known-size ratio is the lower of it and parallel hashing), and the
Glance cases add glance_store's own ``rbd`` store.

    tools/bench.sh [--size-gib 2] [--reps 3] [--json bench.json]
                   [--no-glance] [--no-readers] [--only KIND,...]
"""

import argparse
import json
import logging
import time

from harness.bench import report as report_mod
from harness.bench import workload
from harness import clouds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-gib', type=float, default=2)
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--json', default='bench.json')
    parser.add_argument('--no-glance', action='store_true')
    parser.add_argument('--no-readers', action='store_true',
                        help='leave out the concurrent-readers cases')
    parser.add_argument('--only', type=lambda v: v.split(','),
                        help='comma-separated kinds of cases to run: '
                             'limits, store, readers, glance, cinder, '
                             'hosts')
    args = parser.parse_args()
    cloud = clouds.full_stack('the benchmark')
    logging.basicConfig(level=logging.WARNING)
    bench = workload.Bench(args, cloud)
    size = bench.size
    reps = bench.run()
    table, ratios = report_mod.report(size, reps)
    print('\nImage %.2f GiB, %d repetition(s), %s\n' % (
        args.size_gib, args.reps, time.strftime('%Y-%m-%d %H:%M')))
    print(table)
    with open(args.json, 'w') as f:
        json.dump({'size_bytes': size, 'repetitions': reps,
                   'ratios': ratios}, f, indent=1)
    print('\nraw results: %s' % args.json)


if __name__ == '__main__':
    main()
