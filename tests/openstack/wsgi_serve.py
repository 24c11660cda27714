"""Minimal threaded WSGI runner (standard library only) for the OpenStack WSGI apps the tests run.

Usage: python wsgi_serve.py <module>[:<attr>] <host> <port>
  e.g. python wsgi_serve.py placement.wsgi.api:application 127.0.0.1 19501
       python wsgi_serve.py keystone.wsgi.api:application 127.0.0.1 19500

Neither keystone 30 nor openstack-placement 16 ships a server script any more. With EXIT_WITH_PID set, the
server exits when that process is gone. Every request is
logged as one line on stderr (the access log the tests count requests with):
  ACCESS <method> <path> <status> <unix time the response was sent> <seconds it took>
"""
import importlib
import os
import socketserver
import threading
import sys
import time
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

t0 = time.monotonic()


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class AccessLogHandler(WSGIRequestHandler):
    def parse_request(self):
        self.started = time.time()
        return super().parse_request()

    def log_request(self, code="-", size="-"):
        method, _, rest = (self.requestline or "").partition(" ")
        path = rest.rsplit(" ", 1)[0]
        now = time.time()
        took = now - getattr(self, "started", now)
        sys.stderr.write("ACCESS %s %s %s %.3f %.4f\n" % (method, path, code, now, took))
        sys.stderr.flush()

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))
        sys.stderr.flush()


def exit_with(pid):
    """Exits when process `pid` (the test binary that started us) is gone, so that a test run
    that dies without cleaning up never leaves servers behind."""
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass
        time.sleep(1)


def main():
    if os.environ.get("EXIT_WITH_PID"):
        threading.Thread(target=exit_with, args=(int(os.environ["EXIT_WITH_PID"]),),
                         daemon=True).start()
    target, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # keystone's oslo.config parses sys.argv at import time: hide our arguments from it
    sys.argv = sys.argv[:1]
    mod_name, _, attr = target.partition(":")
    app = getattr(importlib.import_module(mod_name), attr or "application")
    httpd = make_server(host, port, app, server_class=ThreadingWSGIServer,
                        handler_class=AccessLogHandler)
    print("READY %s on http://%s:%d (app load %.2fs)"
          % (target, host, port, time.monotonic() - t0), flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
