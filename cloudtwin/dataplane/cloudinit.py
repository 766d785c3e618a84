"""cloud-init's basic contract for twin VMs: what a server's user-data asks for at first boot.

Supported, as cloud-init reads them: a shell script (``#!``), ``#cloud-config`` (``users`` with
``ssh_authorized_keys`` / ``ssh-authorized-keys``, ``sudo``, ``groups``, ``shell``; top-level
``ssh_authorized_keys`` for the default user; ``write_files``; ``bootcmd``; ``runcmd``), a MIME
multipart of those, and gzip-compressed user-data. Anything else (``#include`` URLs, ``packages``,
part handlers) is reported in the console log as skipped, never silently dropped: a twin VM cannot
fetch from the internet.

No I/O here: ``plan`` turns user-data into a ``BootPlan``; ``machines`` writes it into the VM's root
and runs its commands inside the VM.
"""

from __future__ import annotations

import base64
import binascii
import email
import gzip
import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

MAX_USER_DATA = 65535 * 2


@dataclass
class UserSpec:
    name: str
    keys: list[str] = field(default_factory=list)
    shell: str = "/bin/bash"
    groups: list[str] = field(default_factory=list)
    sudo: bool = False


@dataclass
class FileSpec:
    path: str
    content: bytes
    permissions: int = 0o644
    owner: str = "root:root"
    append: bool = False


@dataclass
class BootPlan:
    users: list[UserSpec] = field(default_factory=list)
    default_user_keys: list[str] = field(default_factory=list)   # top-level ssh_authorized_keys
    files: list[FileSpec] = field(default_factory=list)
    bootcmd: list[str] = field(default_factory=list)             # shell lines, every boot
    scripts: list[tuple[str, str]] = field(default_factory=list)  # (name, text), once, at first boot
    notes: list[str] = field(default_factory=list)               # what was skipped, for the console


def decode(user_data: str | None) -> bytes:
    """Nova's base64 user-data as bytes (gunzipped when cloud-init would gunzip it)."""
    if not user_data:
        return b""
    try:
        raw = base64.b64decode(user_data, validate=False)
    except (binascii.Error, ValueError):
        return b""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            pass
    return raw[:MAX_USER_DATA]


def plan(user_data: str | None) -> BootPlan:
    out = BootPlan()
    _part(decode(user_data), "", out)
    return out


def _part(raw: bytes, ctype: str, out: BootPlan) -> None:
    text = raw.decode("utf-8", "replace")
    head = text.lstrip()[:64]
    if ctype == "multipart/mixed" or head.startswith("Content-Type: multipart") or head.startswith("MIME-Version"):
        _multipart(raw, out)
    elif ctype == "text/x-shellscript" or head.startswith("#!"):
        out.scripts.append((f"part-{len(out.scripts) + 1:03d}", text))
    elif ctype == "text/cloud-config" or head.startswith("#cloud-config"):
        _cloud_config(text, out)
    elif text.strip():
        kind = head.splitlines()[0] if head else ctype
        out.notes.append(f"user-data part of type {kind!r} skipped: the twin runs shell scripts and "
                         "#cloud-config only")


def _multipart(raw: bytes, out: BootPlan) -> None:
    msg = email.message_from_bytes(raw)
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            _part(payload, part.get_content_type(), out)


def _str_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, (str, int, float))]
    return []


def _command(item: Any) -> str | None:
    """A runcmd/bootcmd entry: a string runs through sh, a list is an argv."""
    if isinstance(item, str):
        return item
    if isinstance(item, list) and item:
        return " ".join(shlex.quote(str(x)) for x in item)
    return None


def _cloud_config(text: str, out: BootPlan) -> None:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        out.notes.append(f"#cloud-config is not valid YAML, skipped: {str(exc).splitlines()[0]}")
        return
    if not isinstance(doc, dict):
        out.notes.append("#cloud-config is not a mapping, skipped")
        return
    out.default_user_keys += _str_list(doc.get("ssh_authorized_keys"))
    for u in doc.get("users") or []:
        if u == "default" or not isinstance(u, dict) or not isinstance(u.get("name"), str):
            continue
        sudo = u.get("sudo")
        groups = u.get("groups")
        out.users.append(UserSpec(
            name=u["name"], keys=_str_list(u.get("ssh_authorized_keys") or u.get("ssh-authorized-keys")),
            shell=str(u.get("shell") or "/bin/bash"),
            groups=[g.strip() for g in groups.split(",")] if isinstance(groups, str) else _str_list(groups),
            sudo=bool(sudo) and sudo is not False and sudo != "False"))
    for f in doc.get("write_files") or []:
        if not isinstance(f, dict) or not isinstance(f.get("path"), str):
            continue
        content = f.get("content", "")
        data = content.encode() if isinstance(content, str) else b""
        encoding = str(f.get("encoding", "")).lower()
        if encoding in ("b64", "base64"):
            data = base64.b64decode(data, validate=False)
        elif encoding in ("gz+b64", "gzip+base64", "gz+base64"):
            data = gzip.decompress(base64.b64decode(data, validate=False))
        try:
            perms = int(str(f.get("permissions", "0644")), 8)
        except ValueError:
            perms = 0o644
        out.files.append(FileSpec(f["path"], data, perms, str(f.get("owner", "root:root")),
                                  bool(f.get("append", False))))
    out.bootcmd += [c for c in map(_command, doc.get("bootcmd") or []) if c]
    runcmd = [c for c in map(_command, doc.get("runcmd") or []) if c]
    if runcmd:
        out.scripts.append(("runcmd", "#!/bin/sh\n" + "\n".join(runcmd) + "\n"))
    for key in ("packages", "package_update", "package_upgrade", "apt", "snap"):
        if doc.get(key):
            out.notes.append(f"cloud-config '{key}' skipped: a twin VM has no package mirror")
