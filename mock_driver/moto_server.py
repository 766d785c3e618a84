"""One moto server that every Spider replica's MOCK provider reaches over HTTP (``python -m mock_driver.moto_server``).

Replicas behind a load balancer must agree about what exists: a VPC made through one replica is
seen through another. With ``SPIDERTWIN_MOTO_ENDPOINT=http://127.0.0.1:PORT`` a replica's MOCK driver
sends its boto3 calls to this server (``moto_remote.MotoServerBackend``) instead of moto in its own
process.

It is moto's own WSGI application (what ``ThreadedMotoServer`` and ``moto_server`` run) with the
MOCK settings (strict validation, no default AMIs, the speed-ups of ``moto_speedups``), served by
werkzeug threads for keep-alive connections, one request at a time: moto's backends are not
thread-safe. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any, Callable

from mock_driver.moto_backend import _configure_moto_settings


def serialised(app: Callable[..., Any]) -> Callable[..., Any]:
    """The WSGI app, one request at a time (the body is read inside the lock too)."""
    lock = threading.Lock()

    def call(environ: dict, start_response: Callable[..., Any]) -> Any:
        with lock:
            return list(app(environ, start_response))

    return call


def make(host: str, port: int) -> Any:
    _configure_moto_settings()
    from mock_driver.moto_speedups import apply_all
    apply_all()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server
    app = DomainDispatcherApplication(create_backend_app)
    return make_server(host, port, serialised(app), threaded=True, request_handler=MotoRequestHandler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mock_driver.moto_server",
                                     description="the shared moto server of a Spider cluster's MOCK provider")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: any free one)")
    args = parser.parse_args(argv)
    server = make("127.0.0.1", args.port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"moto server listening on http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
