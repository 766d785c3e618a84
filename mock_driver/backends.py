"""Which moto backend this process's MOCK provider uses, chosen once: a worker process or in-process.

It lives apart from both backends so that each depends only downward: ``moto_worker`` runs a
``moto_backend.MotoBackend`` inside the worker, and this module is the only one that knows both.

* default - ``moto_worker.MotoWorkerBackend``: moto in ONE dedicated child process with its own core
  and GIL; the server's calls travel over a pipe.
* ``SPIDERTWIN_MOTO_INPROCESS=1`` - ``moto_backend.MotoBackend.local()``: moto in this process, on a
  single executor thread (moto's CPU then shares the server's GIL).
* ``SPIDERTWIN_MOTO_ENDPOINT=http://host:port`` - ``moto_remote.MotoServerBackend``: one moto server
  (``python -m mock_driver.moto_server``) shared by every Spider replica, reached over HTTP.

Both offer ``executor``, ``client(account, region, service)``, ``ensure_images``, ``reset`` and ``close``.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

from mock_driver.moto_backend import MotoBackend
from mock_driver.moto_remote import ENDPOINT_ENV, MotoServerBackend
from mock_driver.moto_worker import MotoWorkerBackend

INPROCESS_ENV = "SPIDERTWIN_MOTO_INPROCESS"

_active: Any = None  # the process's MOCK backend (MotoBackend or MotoWorkerBackend)
_active_lock = threading.Lock()


def account_id(mock_name: str) -> str:
    """A deterministic 12-digit moto account id for a MockName (never moto's default account)."""
    n = int.from_bytes(hashlib.sha256(mock_name.encode()).digest()[:8], "big") % 10**11
    return f"9{n:011d}"


def inprocess_mode() -> bool:
    """True when ``SPIDERTWIN_MOTO_INPROCESS`` asks for moto in this process (no worker)."""
    return os.environ.get(INPROCESS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def get_backend() -> Any:
    """The MOCK backend of this process (created on first use)."""
    global _active
    with _active_lock:
        if _active is None:
            endpoint = os.environ.get(ENDPOINT_ENV, "").strip()
            if endpoint:
                _active = MotoServerBackend(endpoint)
            else:
                _active = MotoBackend.local() if inprocess_mode() else MotoWorkerBackend()
        return _active


def current_backend() -> Any:
    """The MOCK backend if one was created, else None (nothing is started)."""
    return _active


def set_backend(backend: Any) -> Any:
    """Make ``backend`` this process's MOCK backend (benchmarks and tests pick their own); returns
    the previous one, which is not closed."""
    global _active
    with _active_lock:
        previous, _active = _active, backend
    return previous


def shutdown_backend() -> None:
    """Close the process's MOCK backend (stops the worker); the next ``get_backend()`` starts afresh."""
    global _active
    with _active_lock:
        backend, _active = _active, None
    if backend is not None:
        backend.close()
        if isinstance(backend, MotoBackend):
            MotoBackend.forget_local(backend)
