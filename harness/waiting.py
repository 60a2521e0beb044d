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

"""Waiting for a condition, written once (standard library only)."""

import time


class TimedOut(Exception):
    """The condition did not hold in time; the message says what."""


def until(probe, timeout, interval=0.5, what=None, errors_are_no=False):
    """Poll ``probe()`` until it returns something true; return that.

    :param timeout: seconds before giving up
    :param what: what is awaited; with it a timeout raises
        :class:`TimedOut` naming it, without it returns the last (false)
        answer
    :param errors_are_no: an exception from ``probe`` counts as "not yet"
        (a service that is still starting refuses connections)
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = probe()
        except Exception:
            if not errors_are_no:
                raise
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            if what is not None:
                raise TimedOut('timed out after %ds waiting for %s'
                               % (timeout, what))
            return found
        time.sleep(interval)
