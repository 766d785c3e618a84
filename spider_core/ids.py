"""spUUIDs and the IID transform (contract section 3): the one place ids are made and mapped."""

from __future__ import annotations

import base64
import os
import re
import threading
import time

from spider_core.errors import SpiderError
from spider_core.model import IID

_xid_lock = threading.Lock()
_xid_counter = int.from_bytes(os.urandom(3), "big")
_MACHINE = os.urandom(3)
_PID = (os.getpid() & 0xFFFF).to_bytes(2, "big")


def new_xid() -> str:
    """A 20-character, time-ordered, lowercase base32hex id in the format of rs/xid.

    12 bytes: 4-byte big-endian seconds, 3-byte machine id, 2-byte pid, 3-byte counter.
    """
    global _xid_counter
    with _xid_lock:
        _xid_counter = (_xid_counter + 1) & 0xFFFFFF
        counter = _xid_counter
    raw = int(time.time()).to_bytes(4, "big") + _MACHINE + _PID + counter.to_bytes(3, "big")
    # 96 bits in base32hex: 20 digits (the last one carries 4 bits), as rs/xid writes them.
    return base64.b32hexencode(raw)[:20].decode("ascii").lower()


def _max_name_len(id_max_length: int) -> int:
    if id_max_length <= 0:
        return 9
    if id_max_length <= 21:
        raise SpiderError("The Minimum ID Length must be greater than 21!")
    return id_max_length - 21


_FIRST_LETTER = re.compile(r"[A-Za-z]")
_NOT_ID_CHAR = re.compile(r"[^A-Za-z0-9_-]+")


def clean_name(name: str, max_len: int) -> str:
    """First kept char an ASCII letter, then [A-Za-z0-9-_]; cut at max_len; lower-cased."""
    first = _FIRST_LETTER.search(name)
    if first is None:
        return ""
    return _NOT_ID_CHAR.sub("", name[first.start():])[:max_len].lower()


def new_sp_uuid(name: str, *, provider: str = "", id_max_length: int = 255, transform: bool = True) -> str:
    """The id Spider asks a CSP to use for ``name`` (its spUUID)."""
    if not transform:
        return name
    base = clean_name(name, _max_name_len(id_max_length))
    uid = f"{base}-{new_xid()}" if base else new_xid()
    uid = uid.replace("-", "_") if provider.upper() == "TENCENT" else uid.replace("_", "-")
    return uid.replace("sg-", "sg")


def transform_enabled(request_mode: str | None) -> bool:
    """``IDTransformMode`` in the request wins when ON/OFF; else env ``ID_TRANSFORM_MODE=OFF`` disables."""
    mode = (request_mode or "").strip().upper()
    if mode in ("ON", "OFF"):
        return mode == "ON"
    return os.environ.get("ID_TRANSFORM_MODE", "ON").strip().upper() != "OFF"


# ---- the three IID views --------------------------------------------------------------------------

def spider_system_id(sp_uuid: str, csp_id: str) -> str:
    return f"{sp_uuid}:{csp_id}"


def csp_id_of(stored_system_id: str) -> str:
    """User SystemId = stored SystemId with everything up to the first ':' removed."""
    _, sep, rest = stored_system_id.partition(":")
    return rest if sep else stored_system_id


def sp_uuid_of(stored_system_id: str) -> str:
    head, sep, _ = stored_system_id.partition(":")
    return head if sep else stored_system_id


def to_user_iid(stored: IID) -> IID:
    return IID(stored.name_id, csp_id_of(stored.system_id))


def to_driver_iid(stored: IID) -> IID:
    return IID(sp_uuid_of(stored.system_id), csp_id_of(stored.system_id))
