"""CSP call history ("HISCALL"): every driver call to a cloud, with CB-Spider's call-log fields.

Drivers wrap each SDK call in ``call_log.timed(...)``. Each record goes to

* a rotating log file in CB-Spider's line format (``$SPIDER_ROOT/log/calllog/calllogs.log``), and
* a bounded in-memory ring that ``GET /spider/calllog`` filters and returns as JSON.

Recording is thread-safe (drivers call from worker threads) and cheap on the event loop: lines go
to the file from a background writer thread, in batches (a synchronous rotating handler cost ~0.5 ms of
stat/seek/flush per call on the loop). Error texts are scrubbed of anything that looks like a secret
before they are stored.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import os
import re
import socket
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

# resource types drivers name in call records (CB-Spider's call-log enum)
RT_REGIONZONE = "REGIONZONE"
RT_IMAGE = "VMIMAGE"
RT_SPEC = "VMSPEC"
RT_VPC = "VPC/SUBNET"
RT_SG = "SECURITYGROUP"
RT_KEY = "VMKEYPAIR"
RT_VM = "VM"
RT_NLB = "NETWORKLOADBALANCER"
RT_DISK = "DISK"
RT_MYIMAGE = "MYIMAGE"
RT_TAG = "TAG"
RT_PUBLICIP = "PUBLICIP"
RT_NIC = "NIC"
RT_PRICE = "PRICEINFO"
RESOURCE_TYPES = ("REGIONZONE", "PRICEINFO", "VMIMAGE", "VMSPEC", "VPC/SUBNET", "SECURITYGROUP",
                  "VMKEYPAIR", "DISK", "VM", "MYIMAGE", "NETWORKLOADBALANCER", "TAG", "MONITORING",
                  "CLUSTER", "FILESYSTEM", "RDBMS", "PUBLICIP", "NIC")

_SECRET_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"(?i)(aws_secret_access_key|secret|password|passwd|token|clientsecret)(\s*[=:]\s*)\S+"),
    re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"),
]


def scrub(text: str) -> str:
    """Remove private keys, secret-looking assignments and AWS access key ids from a message."""
    text = _SECRET_PATTERNS[0].sub("<private key removed>", text)
    text = _SECRET_PATTERNS[1].sub(lambda m: f"{m.group(1)}{m.group(2)}<hidden>", text)
    return _SECRET_PATTERNS[2].sub("<access key id hidden>", text)


class LineWriter:
    """Appends lines to a size-rotated file from one background thread, a batch per write."""

    CHUNK = 64  # lines per write: a file outgrows max_bytes by at most one chunk

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self._handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                                             encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._pending: list[str] = []
        self._busy = False
        self._closed = False
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="calllog-writer", daemon=True)
        self._thread.start()

    def put(self, line: str) -> None:
        with self._cv:
            self._pending.append(line)
            if len(self._pending) == 1:
                self._cv.notify_all()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every line put so far is in the file."""
        with self._cv:
            self._cv.wait_for(lambda: not self._pending and not self._busy, timeout)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._thread.join(10)
        self._handler.close()

    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._pending or self._closed)
                batch, self._pending = self._pending, []
                if not batch:
                    return  # closed and drained
                self._busy = True
            # one write per chunk: the handler checks the size (rotates) and flushes once per chunk
            for i in range(0, len(batch), self.CHUNK):
                text = "\n".join(batch[i:i + self.CHUNK])
                self._handler.emit(logging.LogRecord("calllog", logging.INFO, "", 0, text, None, None))
            with self._cv:
                self._busy = False
                self._cv.notify_all()


@dataclass
class CallRecord:
    CloudOS: str
    RegionZone: str
    ResourceType: str
    ResourceName: str
    CloudOSAPI: str
    ElapsedTime: str
    ErrorMSG: str
    Time: str = ""
    ConnectionName: str = ""
    seq: int = field(default=0)

    def line(self, host_ip: str) -> str:
        """CB-Spider's HISCALL line (contract 14)."""
        ts = datetime.fromisoformat(self.Time)
        stamp = ts.strftime("%Y-%m-%d %H:%M:%S (%A)")
        return (f'[HISCALL].[{host_ip}] {stamp} calllog.go:0 - "CloudOS" : "{self.CloudOS}", '
                f'"RegionZone" : "{self.RegionZone}", "ResourceType" : "{self.ResourceType}", '
                f'"ResourceName" : "{self.ResourceName}", "CloudOSAPI" : "{self.CloudOSAPI}", '
                f'"ElapsedTime" : "{self.ElapsedTime}", "ErrorMSG" : "{self.ErrorMSG}"')


class CallLog:
    """Process-wide call history. ``configure`` points it at a file; until then it only keeps the ring."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._ring: deque[CallRecord] = deque(maxlen=capacity)
        self._seq = 0
        self._writer: LineWriter | None = None
        self._atexit = False
        self._host_ip = _host_ip()
        # called with (cloud_os, api, elapsed seconds, failed) for every record (the metrics' CSP latency)
        self.observers: list[Callable[[str, str, float, bool], None]] = []

    def configure(self, log_dir: Path | None, capacity: int | None = None,
                  max_bytes: int = 20 * 1024 * 1024, backups: int = 100) -> None:
        """Write lines under ``log_dir`` from now on (``None``: flush and close the file, ring only)."""
        with self._lock:
            if capacity is not None and capacity != self._ring.maxlen:
                self._ring = deque(self._ring, maxlen=capacity)
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            writer = LineWriter(log_dir / "calllogs.log", max_bytes, backups)
            with self._lock:
                self._writer = writer
            if not self._atexit:  # a process that never calls configure(None) still writes every line
                atexit.register(self.configure, None)
                self._atexit = True

    def flush(self) -> None:
        """Wait until every record so far is in the file (tests, shutdown)."""
        writer = self._writer
        if writer is not None:
            writer.flush()

    def record(self, *, cloud_os: str, region_zone: str, resource_type: str, resource_name: str,
               api: str, elapsed: float, error: str = "", connection: str = "") -> CallRecord:
        rec = CallRecord(CloudOS=cloud_os, RegionZone=region_zone, ResourceType=resource_type,
                         ResourceName=resource_name, CloudOSAPI=api, ElapsedTime=f"{elapsed:.4f}",
                         ErrorMSG=scrub(error).replace("\n", " "),
                         Time=datetime.now().astimezone().isoformat(), ConnectionName=connection)
        with self._lock:
            self._seq += 1
            rec.seq = self._seq
            self._ring.append(rec)
            writer = self._writer
        if writer is not None:
            writer.put(rec.line(self._host_ip))
        for observe in self.observers:
            observe(cloud_os, api, elapsed, bool(error))
        return rec

    @contextmanager
    def timed(self, *, cloud_os: str, region_zone: str, resource_type: str, resource_name: str,
              api: str, connection: str = "") -> Iterator[None]:
        """Time the wrapped CSP call and record it, with the error text if it raises."""
        start = time.perf_counter()
        try:
            yield
        except BaseException as exc:  # noqa: BLE001 - recorded, then re-raised
            self.record(cloud_os=cloud_os, region_zone=region_zone, resource_type=resource_type,
                        resource_name=resource_name, api=api, elapsed=time.perf_counter() - start,
                        error=str(exc) or type(exc).__name__, connection=connection)
            raise
        self.record(cloud_os=cloud_os, region_zone=region_zone, resource_type=resource_type,
                    resource_name=resource_name, api=api, elapsed=time.perf_counter() - start,
                    connection=connection)

    def query(self, *, cloud_os: str = "", resource_type: str = "", resource_name: str = "",
              connection: str = "", errors_only: bool = False, since_seq: int = 0,
              limit: int = 1000) -> list[dict]:
        """Newest-last records matching every filter given (exact match, case-insensitive)."""
        with self._lock:
            items = list(self._ring)
        out = []
        for rec in items:
            if rec.seq <= since_seq:
                continue
            if cloud_os and rec.CloudOS.lower() != cloud_os.lower():
                continue
            if resource_type and rec.ResourceType.lower() != resource_type.lower():
                continue
            if resource_name and rec.ResourceName != resource_name:
                continue
            if connection and rec.ConnectionName != connection:
                continue
            if errors_only and not rec.ErrorMSG:
                continue
            out.append(asdict(rec))
        return out[-limit:] if limit > 0 else out

    def clear(self) -> None:
        with self._lock:
            self._ring.clear()


def _host_ip() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


call_log = CallLog(capacity=int(os.environ.get("SPIDER_CALLLOG_CAPACITY", "100000")))
