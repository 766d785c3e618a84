"""How the twin names things: stable ids, Nova's hostnames and its EC2-style ids. A leaf module, so
state, wire formats and engines can all share the same rules without importing one another."""

from __future__ import annotations

import re
import uuid


def stable_id(*parts: str) -> str:
    """A UUID that depends only on ``parts`` (image ids, project ids survive restarts and resets)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "cloudtwin:" + "/".join(parts)))


def hostname_of(name: str) -> str:
    """The hostname Nova gives a server named ``name`` (lower case, other characters as '-', <= 63)."""
    h = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return h[:63] or "server"


def ec2_id(uuid_text: str, prefix: str) -> str:
    """Nova's EC2 form ``<prefix>-%08x`` of the first 32 bits of a UUID."""
    try:
        number = int(uuid_text.replace("-", "")[:8], 16)
    except ValueError:
        number = 0
    return f"{prefix}-{number:08x}"
