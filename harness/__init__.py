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

"""The test harness of cinder_ext_store (not shipped with the package).

One place for what the functional tests, the demo, the benchmark and the
stack tool share:

* :mod:`harness.stack` - the local test cloud (``tools/stack``): one module
  per service, each started, checked and stopped by pid;
* :mod:`harness.clouds` - ``clouds.yaml``: written by the stack, read by
  everything that talks to a cloud (ours or an existing DevStack);
* :mod:`harness.stores` - stores loaded the way Glance loads them;
* :mod:`harness.images` - image data that can be checked byte for byte;
* :mod:`harness.glance` - a Glance client for end-to-end runs;
* :mod:`harness.leaks` - what Cinder and this host hold, to find leaks;
* :mod:`harness.faults` - a fault-injecting proxy in front of cinder-api;
* :mod:`harness.procfs` - what /proc says (CPU, RSS, children, threads);
* :mod:`harness.waiting` - polling for a condition, with a deadline;
* :mod:`harness.bench` - the benchmark's cases, sampler and report.

Importing this package imports nothing else: the stack tool runs on the
system Python with the standard library only.
"""
