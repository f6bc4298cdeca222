"""moto's server with one request at a time: `moto_server.py HOST PORT`.

moto's own server handles requests on threads and its DynamoDB backend does not lock,
so two concurrent conditional writes to one item can both pass their condition. Real
DynamoDB applies the writes to an item one after another; serializing the requests
gives the same guarantee here. A read-then-write implementation would still race
(its read and its write are separate requests), so the replay race test keeps its
teeth.
"""
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            # moto answers with complete bodies, so the whole response is made here.
            return list(app(environ, start_response))

    run_simple(host, port, serialized, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
