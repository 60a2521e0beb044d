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

"""A fault-injecting HTTP proxy in front of the real cinder-api.

The local stack's Keystone lists it as service type ``volumev3-faults``
(see :mod:`harness.stack.keystone`), so a store configured with
``cinder_catalog_info = volumev3-faults::publicURL`` reaches Cinder through
it by the same catalog lookup as in production. Without rules it forwards
every request unchanged; a test adds rules, each naming a request (HTTP
method and a regular expression searched in the path after
``/v3/<project>``) and what happens to it:

* ``Fault.status(503)`` - answered by the proxy, never forwarded;
* ``Fault.reset()`` - the connection is reset before forwarding;
* ``Fault.lost()`` - forwarded, Cinder acts, the answer is replaced by a
  connection reset (what a crashed load balancer does);
* ``Fault.late(seconds)`` - forwarded, answered only after ``seconds``
  (past the store's timeout, so the answer is lost too);
* ``Fault.hook(callable)`` - ``callable()`` runs, then the request is
  forwarded (e.g. stop a Cinder service just before an extend).
"""

import http.client
import http.server
import json
import re
import socket
import struct
import threading
import time
import urllib.parse


class Fault(object):
    """What happens to a matching request."""

    def __init__(self, kind, value=None):
        self.kind = kind
        self.value = value

    @classmethod
    def status(cls, code):
        return cls('status', code)

    @classmethod
    def reset(cls):
        return cls('reset')

    @classmethod
    def lost(cls):
        return cls('lost')

    @classmethod
    def late(cls, seconds):
        return cls('late', seconds)

    @classmethod
    def hook(cls, call):
        return cls('hook', call)

    def __repr__(self):
        return '%s%s' % (self.kind, '' if self.value is None
                         else '(%s)' % self.value)


class Rule(object):
    """Requests ``method`` + ``path`` get ``fault``, ``times`` times.

    :param times: how many matching requests fail; None: all of them
    """

    def __init__(self, method, path, fault, times=1):
        self.method = method
        self.path = re.compile(path)
        self.fault = fault
        self.left = times
        self.hits = 0

    def take(self, method, path):
        if method != self.method or not self.path.search(path):
            return False
        if self.left is not None:
            if self.left <= 0:
                return False
            self.left -= 1
        self.hits += 1
        return True


#: The requests of the store, as rules name them.
VOLUME_CREATE = ('POST', r'^/volumes$')
VOLUME_GET = ('GET', r'^/volumes/[0-9a-f-]{36}$')
VOLUME_DELETE = ('DELETE', r'^/volumes/[0-9a-f-]{36}$')
VOLUME_ACTION = ('POST', r'^/volumes/[0-9a-f-]{36}/action$')
ATTACHMENT_CREATE = ('POST', r'^/attachments$')
ATTACHMENT_COMPLETE = ('POST', r'^/attachments/[0-9a-f-]{36}/action$')
ATTACHMENT_DELETE = ('DELETE', r'^/attachments/[0-9a-f-]{36}$')
METADATA = ('POST', r'^/volumes/[0-9a-f-]{36}/metadata$')


def _cinder_error(code):
    """A body shaped like cinder-api's, so cinderclient parses it."""
    if code == 413:
        return {'overLimit': {
            'code': 413, 'retryAfter': '0',
            'message': 'VolumeSizeExceedsAvailableQuota: Requested volume '
                       'or snapshot exceeds allowed gigabytes quota '
                       '(injected by the fault proxy)'}}
    return {'computeFault': {
        'code': code,
        'message': 'injected by the fault proxy: HTTP %d' % code}}


class FaultProxy(object):
    """The proxy: ``start()``, add rules per test, ``clear()``, ``stop()``.

    :param upstream: cinder-api's base URL (scheme://host:port)
    :param port: where to listen on 127.0.0.1
    """

    def __init__(self, upstream, port):
        url = urllib.parse.urlsplit(upstream)
        self.upstream = (url.hostname, url.port or 80)
        self.port = port
        self.rules = []
        self.seen = []  # (method, path, fault or None) of every request
        self._lock = threading.Lock()
        self._server = None

    def start(self):
        proxy = self

        class Handler(_Handler):
            owner = proxy
        self._server = http.server.ThreadingHTTPServer(
            ('127.0.0.1', self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever,
                         name='fault-proxy', daemon=True).start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def add(self, request, fault, times=1):
        """Make ``times`` requests ``request`` ((method, path)) fail."""
        rule = Rule(request[0], request[1], fault, times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self):
        with self._lock:
            del self.rules[:]
            del self.seen[:]

    def fault_for(self, method, path):
        with self._lock:
            for rule in self.rules:
                if rule.take(method, path):
                    self.seen.append((method, path, rule.fault))
                    return rule.fault
            self.seen.append((method, path, None))
        return None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    owner = None  # the FaultProxy, set by a subclass

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _handle(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else None
        # /v3/<project>/volumes/... -> /volumes/...
        path = urllib.parse.urlsplit(self.path).path
        api_path = re.sub(r'^/v3/[^/]+', '', path) or '/'
        fault = self.owner.fault_for(self.command, api_path)
        if fault is not None and fault.kind == 'status':
            return self._answer(fault.value, {}, json.dumps(
                _cinder_error(fault.value)).encode(), 'application/json')
        if fault is not None and fault.kind == 'reset':
            return self._reset()
        if fault is not None and fault.kind == 'hook':
            fault.value()
        status, headers, data = self._forward(body)
        if fault is not None and fault.kind == 'lost':
            return self._reset()
        if fault is not None and fault.kind == 'late':
            time.sleep(fault.value)
            return self._reset()
        self._answer(status, headers, data)

    def _forward(self, body):
        conn = http.client.HTTPConnection(*self.owner.upstream, timeout=300)
        try:
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ('host', 'connection')}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def _answer(self, status, headers, data, ctype=None):
        self.send_response(status)
        skip = ('content-length', 'transfer-encoding', 'connection', 'date',
                'server')
        for name, value in (headers.items() if isinstance(headers, dict)
                            else headers):
            if name.lower() not in skip:
                self.send_header(name, value)
        if ctype:
            self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _reset(self):
        """Close with RST: the client sees 'connection reset by peer'."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack('ii', 1, 0))
            self.connection.close()
        except OSError:
            pass
