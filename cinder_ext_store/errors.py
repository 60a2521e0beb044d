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

import builtins

from glance_store import exceptions


class TimedOut(exceptions.TimeoutError, exceptions.BackendException,
               builtins.TimeoutError):
    """Cinder or Ceph did not answer in time.

    Glance 33 answers an upload that fails so with 503 (try again), not
    500; and, being an ``IOError``, a read that fails so is retried by
    Glance's hash pass (see :class:`ReadFailed`).
    """

    def __init__(self, message):
        super(TimedOut, self).__init__(message=message)


class Busy(exceptions.RemoteServiceUnavailable, OSError):
    """Cinder kept refusing a reader the volume: another holds it now.

    Glance answers a download so with 503 (try again later); its hash
    pass retries it (an ``IOError``, see :class:`ReadFailed`).
    """


class ReadFailed(OSError, exceptions.BackendException):
    """An image cannot be read now: Cinder, the attachment or the storage.

    An ``IOError`` because that is the one error Glance's background hash
    pass over a new location (Cinder's upload-to-image, Nova) retries:
    anything else leaves the image without its checksum for good.
    Downloads answer 500 either way.
    """

    def __init__(self, message):
        OSError.__init__(self, message)
        self.msg = message


def raise_as_read_error(error):
    """Raise ``error`` as a read reports it: storage failures as ReadFailed.

    What is not a storage failure (NotFound, Forbidden, an interrupt, an
    OSError already) is raised unchanged.
    """
    if (isinstance(error, exceptions.BackendException) and
            not isinstance(error, OSError)):
        raise ReadFailed(str(error)) from error
    raise error
