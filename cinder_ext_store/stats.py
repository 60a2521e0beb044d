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

"""What one add or get did, as an object: logged once, handed to observers.

A :class:`TransferStats` counts bytes, extends and attachments, notes how
the volume grew and times each phase. The store logs it in one INFO line
(one WARNING line when the operation failed) and passes it to every
observer registered with :meth:`Store.add_observer
<cinder_ext_store.store.Store.add_observer>`. :meth:`TransferStats.parse`
reads such a line back, for tools that only have the log.
"""

import contextlib
import json
import logging
import re
import time

from oslo_utils import units

LOG = logging.getLogger(__name__)

_FIELD = re.compile(r'(\w+)=(\S+)')
_PREFIX = 'cinder_ext '


class TransferStats(object):
    """The account of one operation of one store.

    Phases may nest: ``copy`` includes the ``grow`` and re-``attach``
    of offline growth.
    """

    def __init__(self, operation, store, image_id=None, volume_id=None,
                 progress_interval=0):
        self.operation = operation
        self.store = store
        self.image_id = image_id
        self.volume_id = volume_id
        self.bytes = 0
        self.extends = 0
        self.attachments = 0
        self.growth = []  # 'online' / 'offline', once per extend
        self.phases = {}
        self.error = None
        #: the operation was stopped by its data stream (a client gone, an
        #: import or Glance's size cap aborting): not the store's failure
        self.aborted = False
        self.seconds = None
        self._started = time.monotonic()
        self._active = []  # phases entered and not left, innermost last
        self.progress_interval = progress_interval
        self._next_progress = self._started + (progress_interval or 0)
        self._progress_bytes = 0
        #: bytes the operation moves when known (a declared size, a
        #: read's length): progress lines then say how far and how long
        self.total = None
        #: the phase a progress line names outside any other (a read's
        #: bytes flow while no phase is entered)
        self.main_phase = 'read' if operation == 'get' else '-'

    @contextlib.contextmanager
    def phase(self, name):
        """Add the time spent in the ``with`` block to phase ``name``."""
        started = time.monotonic()
        self._active.append(name)
        try:
            yield
        finally:
            self._active.pop()
            self.phases[name] = (self.phases.get(name, 0.0) +
                                 time.monotonic() - started)

    def moved(self, nbytes):
        """Count bytes copied; log progress when an interval has passed."""
        self.bytes += nbytes
        self.tick()

    def tick(self):
        """Log a progress line if ``progress_interval`` seconds passed.

        One INFO line per interval while the operation runs: bytes so far,
        the rate since the last line and overall, and the current phase, so
        a slow Cinder or a slow client shows in the log as it happens.
        """
        if not self.progress_interval:
            return
        now = time.monotonic()
        if now < self._next_progress:
            return
        elapsed = now - self._started
        recent = (self.bytes - self._progress_bytes) / units.Mi / max(
            now - (self._next_progress - self.progress_interval), 1e-6)
        self._next_progress = now + self.progress_interval
        self._progress_bytes = self.bytes
        rate = self.bytes / max(elapsed, 1e-6)
        LOG.info('%sprogress %s image=%s volume=%s store=%s phase=%s '
                 'bytes=%d seconds=%.1f mib_per_s=%.1f mib_per_s_now=%.1f%s',
                 _PREFIX, self.operation, self.image_id, self.volume_id,
                 self.store, self._active[-1] if self._active else
                 self.main_phase, self.bytes, elapsed, rate / units.Mi,
                 recent, self._how_far(rate))

    def _how_far(self, rate):
        """`` total=.. percent=.. eta_s=..`` when the total is known."""
        if not self.total:
            return ''
        left = max(self.total - self.bytes, 0)
        return ' total=%d percent=%.0f eta_s=%s' % (
            self.total, 100.0 * min(self.bytes, self.total) / self.total,
            '%.0f' % (left / rate) if rate > 0 else '-')

    def finish(self, error=None):
        if self.seconds is None:
            self.seconds = time.monotonic() - self._started
            self.error = error

    @property
    def succeeded(self):
        return self.seconds is not None and self.error is None

    @property
    def mib_per_second(self):
        return self.bytes / units.Mi / max(self.seconds or 0.0, 1e-6)

    def __str__(self):
        fields = [('image', self.image_id), ('volume', self.volume_id),
                  ('store', self.store),
                  ('result', self.result),
                  ('bytes', self.bytes),
                  ('seconds', '%.3f' % (self.seconds or 0.0)),
                  ('mib_per_s', '%.1f' % self.mib_per_second),
                  ('extends', self.extends),
                  ('attachments', self.attachments),
                  ('growth', ','.join(self.growth) or '-'),
                  ('phases', ','.join('%s:%.3f' % kv for kv in
                                      sorted(self.phases.items())) or '-')]
        line = _PREFIX + self.operation + ' ' + ' '.join(
            '%s=%s' % (k, v) for k, v in fields)
        if self.error is not None:
            # Last, quoted once: type and the message's first line.
            line += ' error=%s' % json.dumps(describe(self.error))
        return line

    @property
    def result(self):
        """``ok``, ``aborted`` (by the data stream) or ``failed``."""
        if self.error is None:
            return 'ok'
        return 'aborted' if self.aborted else 'failed'

    @classmethod
    def parse(cls, line):
        """The stats a log line carries, or None when it carries none."""
        at = line.find(_PREFIX)
        if at < 0:
            return None
        words = line[at + len(_PREFIX):].split(' ', 1)
        if words[0] == 'progress':
            return None
        rest, _, error = (words[1] if len(words) > 1 else '').partition(
            ' error=')
        fields = dict(_FIELD.findall(rest))
        if 'bytes' not in fields:
            return None
        none = lambda v: None if v == 'None' else v  # noqa: E731
        stats = cls(words[0], none(fields.get('store')),
                    none(fields.get('image')), none(fields.get('volume')))
        stats.bytes = int(fields['bytes'])
        stats.seconds = float(fields['seconds'])
        stats.extends = int(fields['extends'])
        stats.attachments = int(fields['attachments'])
        growth = fields.get('growth', '-')
        stats.growth = [] if growth == '-' else growth.split(',')
        phases = fields.get('phases', '-')
        stats.phases = {} if phases == '-' else {
            k: float(v) for k, v in (p.split(':') for p in phases.split(','))}
        if fields.get('result') in ('failed', 'aborted'):
            stats.aborted = fields['result'] == 'aborted'
            try:
                stats.error = json.loads(error) if error else 'failed'
            except ValueError:
                stats.error = error
        return stats


def describe(error):
    """``Type: first line of the message``, for one log field."""
    text = str(error).strip().split('\n', 1)[0]
    name = type(error).__name__
    return '%s: %s' % (name, text) if text else name
