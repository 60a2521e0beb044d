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

"""Errors of the store's own that Glance must answer in a particular way.

Glance turns glance_store's exception classes into HTTP statuses; an error
that is both a specific class (what Glance maps) and a
``BackendException`` (what the store's own code catches as a failure of
Cinder or the storage) keeps both readings.
"""

from glance_store import exceptions


class TimedOut(exceptions.TimeoutError, exceptions.BackendException):
    """Cinder or Ceph did not answer in time.

    Glance 33 answers an upload that fails so with 503 (try again), not
    500.
    """

    def __init__(self, message):
        super(TimedOut, self).__init__(message=message)
