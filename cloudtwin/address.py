"""The twin's listening address, as ``spider twin`` and the commands that talk to it read it."""

from __future__ import annotations

import ipaddress

DEFAULT_ADDRESS = "127.0.0.1:8192"


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, "8192"
    host = host.strip("[]") or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise SystemExit(f"cloudtwin: bad address {text!r}: the port must be a number") from None
    if not 0 <= number <= 65535:
        raise SystemExit(f"cloudtwin: bad address {text!r}: port out of range")
    return host, number


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps a server on this machine (what "secure by default" allows)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"
