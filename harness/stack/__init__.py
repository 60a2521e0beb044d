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

"""The local test cloud: PostgreSQL, RabbitMQ, Keystone, Cinder, Glance.

``tools/stack up|down|status|clean|external`` (see :mod:`.cli`). Each
service is a module with a :class:`~harness.stack.service.Service`: install,
start, health, stop by pid. Adding a service is adding a module and a line
in :data:`harness.stack.cli.SERVICES`. Standard library only.
"""
