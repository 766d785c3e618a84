"""moto in ONE dedicated worker process for the MOCK provider (the default; ``backends.py`` chooses).

Why: moto is pure-Python and CPU-heavy (~10 ms per VPC create). In the server process it shares one
GIL with the aiohttp event loop, so under concurrent load both slow down. In a child process moto has
its own core and GIL; the server's single MOCK executor thread only pickles a request, blocks on the
pipe (GIL released) and unpickles the answer (~0.1 ms per round trip).

Design:

* The worker (``python -m mock_driver.moto_worker``, started with ``subprocess`` = fork+exec of a fresh
  interpreter, i.e. "spawn" semantics: safe from a threaded server, no re-import of the server's
  ``__main__``) builds the in-process ``MotoBackend`` (same env settings, strict validation and
  speed-ups as the in-process mode, accounts per MockName via the ``x-moto-account-id`` header, real
  boto3 clients) and serves requests from a socketpair (``multiprocessing.connection.Connection``
  framing, pickle) one at a time: ``("call", account, region, service, api, kwargs)``, ``("reset",)``,
  ``("status",)``, ``("close",)``.
* The server side is ``MotoWorkerBackend``: the same interface as ``MotoBackend`` (``executor``,
  ``client()``, ``ensure_images``, ``reset``, ``close``). ``client()`` returns a ``ClientProxy``:
  ``proxy.create_vpc(**kw)`` returns the worker's dict. A ``ClientError`` comes back as a real
  ``botocore.exceptions.ClientError`` (same ``response`` - Error Code/Message - and operation name;
  the plain class, not botocore's modeled subclass); exceptions of builtins/botocore types come back
  as themselves (e.g. ``ParamValidationError``); anything else as ``MotoWorkerError`` carrying the
  type name and message. The proxy only offers API methods (what ``AwsSession`` uses): no ``meta``,
  ``exceptions``, paginators or waiters.
* Lifecycle: started lazily by the first call (which waits for the worker's "ready"); one request at
  a time (a lock; MOCK has one executor thread anyway). The worker exits on ``("close",)`` (sent by
  ``close()`` = ``MockDriver.close()``), on pipe EOF (the server died or closed it), when its parent
  pid changes (watch thread), and on SIGTERM (default action; SIGINT is ignored - the server's Ctrl-C
  closes it). If it dies, the call in flight (or the next one) raises ``DriverError`` saying so, the
  process is reaped, and the call after that starts a fresh worker: the in-memory cloud is empty then,
  as after a server restart. ``reset()`` empties the worker's moto state.
* ``SPIDERTWIN_MOTO_INPROCESS=1`` keeps moto in the server process (no worker).
"""

from __future__ import annotations

import argparse
import atexit
import gc
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from mock_driver.images import ImagesMixin

log = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0
# One moto call takes milliseconds (a first DescribeImages a few seconds); a worker silent this long is
# hung, not busy: it is killed and replaced, so one stuck call cannot stall every MOCK request forever.
CALL_TIMEOUT_S = float(os.environ.get("SPIDERTWIN_MOTO_CALL_TIMEOUT", "120"))
CLOSE_TIMEOUT_S = 5.0
# Server threads that may each have one request in flight to the worker. Beyond a few, more only queue:
# moto answers one at a time; what matters is that the next request is already in the pipe.
PIPELINE_THREADS = 8
_PROTO = pickle.HIGHEST_PROTOCOL


class MotoWorkerError(Exception):
    """An exception raised in the worker whose type is not reproduced here (type name + message)."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message


# ============================================================================ worker process side
def _pack_exception(exc: BaseException) -> tuple[Any, ...]:
    from botocore.exceptions import ClientError
    if isinstance(exc, ClientError):
        return ("client_error", exc.response, exc.operation_name)
    mod = type(exc).__module__
    if mod == "builtins" or mod == "botocore" or mod.startswith("botocore."):
        try:
            data = pickle.dumps(exc, protocol=_PROTO)
            pickle.loads(data)
            return ("exception", data)
        except Exception:  # noqa: BLE001 - fall back to type name + message
            pass
    return ("remote_error", type(exc).__name__, str(exc))


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(0)  # the server is gone (we were re-parented): nothing to serve


def serve(conn: Connection, parent_pid: int, speedups: bool = True) -> None:
    """The worker's loop: build the in-process moto backend, say ready, answer requests until EOF."""
    if parent_pid:
        threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()
    from mock_driver.moto_backend import MotoBackend
    backend = MotoBackend(speedups=speedups)
    from mock_driver import moto_speedups
    # as the server does (spider_core.cli.tune_gc): moto's catalogues out of the collector's sight and
    # a larger young generation - each moto request allocates thousands of short-lived objects
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    status = {"pid": os.getpid(), "speedups": speedups, "patched": backend.patched,
              "applied": dict(moto_speedups._applied)}
    conn.send_bytes(pickle.dumps(("ready", status), protocol=_PROTO))
    dumps, loads = pickle.dumps, pickle.loads
    clients: dict[tuple[str, str, str], Any] = {}
    while True:
        try:
            msg = loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        op = msg[0]
        reply: tuple[Any, ...]
        try:
            if op == "call":
                _, account, region, service, api, kwargs = msg
                key = (account, region, service)
                client = clients.get(key)
                if client is None:
                    client = clients[key] = backend.client(account, region, service)
                reply = ("ok", getattr(client, api)(**kwargs))
            elif op == "reset":
                backend.reset_now()
                reply = ("ok", None)
            elif op == "status":
                status["applied"] = dict(moto_speedups._applied)
                reply = ("ok", status)
            elif op == "close":
                conn.send_bytes(dumps(("ok", None), protocol=_PROTO))
                return
            else:
                reply = ("remote_error", "ValueError", f"unknown worker request {op!r}")
        except Exception as exc:  # noqa: BLE001 - everything goes back to the caller
            reply = _pack_exception(exc)
        try:
            data = dumps(reply, protocol=_PROTO)
        except Exception as exc:  # noqa: BLE001 - an unpicklable result
            data = dumps(("remote_error", type(exc).__name__, f"result not picklable: {exc}"), protocol=_PROTO)
        try:
            conn.send_bytes(data)
        except OSError:
            return


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="spidertwin MOCK moto worker (started by the server)")
    ap.add_argument("--fd", type=int, required=True)
    ap.add_argument("--parent", type=int, default=0)
    ap.add_argument("--no-speedups", action="store_true")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server handles Ctrl-C and closes us
    conn = Connection(args.fd)
    profile_to = os.environ.get("SPIDERTWIN_MOTO_WORKER_PROFILE", "")  # diagnostics: cProfile stats file
    profiler = None
    if profile_to:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    try:
        serve(conn, args.parent, speedups=not args.no_speedups)
    finally:
        conn.close()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(f"{profile_to}.{os.getpid()}")


# ============================================================================ server side
def _driver_error(message: str) -> Exception:
    from spider_core.errors import DriverError
    return DriverError(message)


class _InFlight:
    """One request written to the worker and not yet answered."""

    __slots__ = ("turn", "error")

    def __init__(self) -> None:
        self.turn = threading.Event()  # set when this request is the oldest in flight (or has failed)
        self.error: Exception | None = None


class MotoWorker:
    """The handle of one worker process generation after generation: start, request, close."""

    def __init__(self, *, speedups: bool = True) -> None:
        self.speedups = speedups
        self._lock = threading.Lock()  # process, pipe and the queue of requests in flight
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._inflight: deque[_InFlight] = deque()  # sent, not yet answered, in the order sent
        self.generation = 0  # incremented for each worker started
        self.status: dict[str, Any] = {}
        self.on_start: list[Any] = []  # called (under the worker lock) after each worker start
        self._closed = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _start(self) -> None:
        parent_sock, child_sock = socket.socketpair()
        try:
            pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH", "")) if p)
            cmd = [sys.executable, "-m", "mock_driver.moto_worker", "--fd", str(child_sock.fileno()),
                   "--parent", str(os.getpid())]
            if not self.speedups:
                cmd.append("--no-speedups")
            proc = subprocess.Popen(cmd, pass_fds=(child_sock.fileno(),), stdin=subprocess.DEVNULL,
                                    close_fds=True, env=env)
        except BaseException:
            parent_sock.close()
            raise
        finally:
            child_sock.close()
        conn = Connection(parent_sock.detach())
        try:
            if not conn.poll(START_TIMEOUT_S):
                raise TimeoutError(f"no answer in {START_TIMEOUT_S:.0f} s")
            kind, status = pickle.loads(conn.recv_bytes())
            if kind != "ready":
                raise RuntimeError(f"unexpected first message {kind!r}")
        except BaseException as exc:
            conn.close()
            code = self._stop_process(proc, grace=0)
            raise _driver_error(f"MOCK moto worker failed to start (pid {proc.pid}, {self._exit_text(code)}): "
                                f"{type(exc).__name__}: {exc}") from None
        self._proc, self._conn = proc, conn
        self.generation += 1
        self.status = status
        for fn in self.on_start:
            fn()
        log.info("MOCK moto worker started (pid %s, generation %d)", proc.pid, self.generation)

    @staticmethod
    def _exit_text(code: int | None) -> str:
        if code is None:
            return "still running"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    @staticmethod
    def _stop_process(proc: subprocess.Popen, grace: float) -> int | None:
        """Wait ``grace`` s, then SIGTERM, then SIGKILL; always reaps (no zombie)."""
        for step in ("wait", "term", "kill"):
            try:
                if step == "term":
                    proc.terminate()
                elif step == "kill":
                    proc.kill()
                return proc.wait(timeout=grace if step == "wait" else 2.0)
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break
        return proc.wait()

    def _lost(self, what: str, *, hung: bool = False) -> Exception:
        """The worker is gone, hung or the pipe is broken: reap it, fail every request still in flight
        with the same description, and return it for the caller. Call with ``_lock`` held."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            conn.close()
        code = self._stop_process(proc, grace=0.0 if hung else 1.0) if proc is not None else None
        pid = proc.pid if proc is not None else "?"
        how = f"did not answer within {CALL_TIMEOUT_S:g} s and was killed" if hung else \
            f"died ({self._exit_text(code)})"
        log.warning("MOCK moto worker (pid %s) lost during %s: %s", pid, what, how)
        error = _driver_error(
            f"MOCK cloud backend failed: the moto worker process (pid {pid}) {how} "
            f"during {what}; the MOCK in-memory cloud state is lost and the next call starts a fresh worker")
        self._fail_inflight(error)
        return error

    def _fail_inflight(self, error: Exception) -> None:
        while self._inflight:
            waiting = self._inflight.popleft()
            waiting.error = error
            waiting.turn.set()

    def request(self, msg: tuple[Any, ...], what: str) -> Any:
        """Send one request and wait for its answer. Requests of several threads are pipelined: each is
        written as soon as it comes, so the worker finds the next one waiting when it finishes one
        (moto still runs them one at a time, in the order sent). The oldest request in flight reads
        the next answer - which is its own - then hands the turn to the next."""
        data = pickle.dumps(msg, protocol=_PROTO)
        mine = _InFlight()
        with self._lock:
            if self._closed:
                raise _driver_error("MOCK moto worker is closed")
            if self._proc is None:
                self._start()
            elif self._proc.poll() is not None:  # died while idle
                raise self._lost(what)
            conn = self._conn
            assert conn is not None
            generation = self.generation
            try:
                conn.send_bytes(data)
            except OSError:
                raise self._lost(what) from None
            self._inflight.append(mine)
            if len(self._inflight) == 1:
                mine.turn.set()
        mine.turn.wait()
        if mine.error is not None:
            raise mine.error
        try:
            answered = conn.poll(CALL_TIMEOUT_S)
            raw = conn.recv_bytes() if answered else None
        except (EOFError, OSError):
            answered, raw = True, None
        with self._lock:
            if mine.error is not None:  # the worker was lost meanwhile (closed, or another caller saw it)
                raise mine.error
            if raw is None:
                if generation != self.generation:
                    raise _driver_error("MOCK moto worker was replaced during the call")
                if not answered:
                    log.error("MOCK moto worker did not answer %s within %.0f s: killing it", what,
                              CALL_TIMEOUT_S)
                raise self._lost(what, hung=not answered)
            if self._inflight and self._inflight[0] is mine:
                self._inflight.popleft()
            if self._inflight:
                self._inflight[0].turn.set()
        reply = pickle.loads(raw)
        kind = reply[0]
        if kind == "ok":
            return reply[1]
        if kind == "client_error":
            from botocore.exceptions import ClientError
            raise ClientError(reply[1], reply[2])
        if kind == "exception":
            raise pickle.loads(reply[1])
        raise MotoWorkerError(reply[1], reply[2])

    def call(self, account: str, region: str, service: str, api: str, kwargs: dict[str, Any]) -> Any:
        return self.request(("call", account, region, service, api, kwargs), f"{service}.{api}")

    def stop(self, *, final: bool = False) -> None:
        """Ask the worker to exit, wait for it (SIGTERM/SIGKILL after a grace time) and reap it."""
        with self._lock:
            if final:
                self._closed = True
            proc, conn = self._proc, self._conn
            self._proc = self._conn = None
            busy = bool(self._inflight)  # a caller may be reading the pipe: only close it (EOF ends the worker)
            self._fail_inflight(_driver_error("MOCK moto worker was stopped during the call"))
            if proc is None:
                return
            try:
                if conn is not None and proc.poll() is None and not busy:
                    conn.send_bytes(pickle.dumps(("close",), protocol=_PROTO))
                    if conn.poll(CLOSE_TIMEOUT_S):
                        conn.recv_bytes()
            except (EOFError, OSError):
                pass
            finally:
                if conn is not None:
                    conn.close()  # EOF for the worker in any case
            self._stop_process(proc, grace=CLOSE_TIMEOUT_S)
            log.info("MOCK moto worker stopped (pid %s)", proc.pid)


class ClientProxy:
    """Looks like a boto3 client to ``AwsSession``: ``proxy.<api>(**kwargs)`` runs in the worker."""

    def __init__(self, worker: MotoWorker, account: str, region: str, service: str) -> None:
        self._worker = worker
        self._account = account
        self._region = region
        self._service = service

    def __getattr__(self, api: str) -> Any:
        if api.startswith("_") or api in ("meta", "exceptions", "get_paginator", "get_waiter",
                                           "can_paginate"):
            raise AttributeError(f"{api!r} is not available on a MOCK moto-worker client proxy "
                                 "(only API methods are)")
        worker, account, region, service = self._worker, self._account, self._region, self._service

        def method(**kwargs: Any) -> Any:
            return worker.call(account, region, service, api, kwargs)

        method.__name__ = api
        self.__dict__[api] = method  # cached: the next lookup skips __getattr__
        return method

    def __repr__(self) -> str:
        return f"<ClientProxy {self._service} {self._region} account={self._account}>"


_live: "weakref.WeakSet[MotoWorkerBackend]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for backend in list(_live):
        try:
            backend.close()
        except Exception:  # noqa: BLE001 - exiting
            pass


class MotoWorkerBackend(ImagesMixin):
    """The server side of the worker: same interface as ``MotoBackend`` (see the module docstring)."""

    def __init__(self, *, speedups: bool = True) -> None:
        self.speedups = speedups
        self.worker = MotoWorker(speedups=speedups)
        # several threads, so requests queue in the pipe while the worker computes (see request())
        self.executor = ThreadPoolExecutor(max_workers=PIPELINE_THREADS, thread_name_prefix="moto")
        self._clients: dict[tuple[str, str, str], ClientProxy] = {}
        self._init_images()
        self.worker.on_start.append(self._forget_images)
        _live.add(self)

    @property
    def patched(self) -> bool:
        """True if the worker applied the moto speed-ups (starts the worker if needed)."""
        return bool(self.status().get("patched"))

    def status(self) -> dict[str, Any]:
        return self.worker.request(("status",), "status")

    def client(self, account: str, region: str, service: str) -> ClientProxy:
        key = (account, region, service)
        c = self._clients.get(key)
        if c is None:
            c = self._clients.setdefault(key, ClientProxy(self.worker, account, region, service))
        return c

    def _forget_images(self) -> None:
        with self._images_lock:
            self.images.clear()

    def ensure_images(self, account: str, region: str, names: list[str]) -> dict[str, str]:
        # start the worker (or report a lost one) first: a fresh worker forgets the cached AMI ids
        self.worker.request(("status",), "connect")
        return super().ensure_images(account, region, names)

    def reset(self) -> None:
        """Drop every moto account's state (what a process restart does)."""
        if self.worker.alive():
            self.worker.request(("reset",), "reset")
        with self._images_lock:
            self.images.clear()

    def close(self) -> None:
        """Stop the worker (its state is lost) and the executor; later calls fail."""
        self.worker.stop(final=True)
        self.executor.shutdown(wait=False, cancel_futures=True)
        _live.discard(self)


if __name__ == "__main__":
    main()
