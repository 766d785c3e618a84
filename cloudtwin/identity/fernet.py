"""Fernet tokens: self-contained, so any twin process holding the same key repository validates them.

The key repository is Keystone's layout (``keystone-manage fernet_setup``): a directory of files named
0, 1, 2 ..., each one url-safe base64 Fernet key; the highest number is the primary key (it signs new
tokens), ``0`` is the staged key, every key validates. Without a directory the process makes its own
keys in memory, and its tokens die with it.

A token's payload holds everything a service needs to act on it: the cloud, the user, the scope
(project, domain or system), the roles with their names, the auth methods, the audit ids and the
times. Unlike Keystone (which looks the roles up again at validation) the roles travel in the token,
so a process that never saw the user still knows what it may do; a change of roles revokes the
user's tokens instead (``store.Revocation``).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PAYLOAD_VERSION = 1


class KeyRepositoryError(ValueError):
    """The key repository is unusable (unreadable, a bad key, no key)."""


class KeyRepository:
    """The Fernet keys of one repository directory, or of this process alone (``path=None``)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path else None
        if self.path is None:
            self.keys = [Fernet.generate_key(), Fernet.generate_key()]    # staged, primary
            return
        if not self.path.exists() or not any(self.path.iterdir()):
            self.setup(self.path)
        self.keys = self._load()

    @staticmethod
    def setup(path: Path) -> None:
        """``keystone-manage fernet_setup``: a staged key (0) and a primary key (1), readable by us only."""
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name in ("0", "1"):
            fd = os.open(path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())

    def _load(self) -> list[bytes]:
        assert self.path is not None
        found: list[tuple[int, bytes]] = []
        for entry in self.path.iterdir():
            if not entry.name.isdigit():
                continue
            key = entry.read_bytes().strip()
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise KeyRepositoryError(f"{entry}: not a Fernet key") from None
            found.append((int(entry.name), key))
        if not found:
            raise KeyRepositoryError(f"{self.path}: no Fernet key (files named 0, 1, ...)")
        return [key for _, key in sorted(found)]

    def rotate(self) -> None:
        """``keystone-manage fernet_rotate`` for an in-memory repository: a new primary, the old ones
        still validate. (A directory is rotated by its owner; re-read it with ``reload``.)"""
        self.keys.append(Fernet.generate_key())

    def reload(self) -> None:
        if self.path is not None:
            self.keys = self._load()

    def replace(self) -> None:
        """Forget every key (in-memory repositories only): every token issued so far stops validating."""
        if self.path is None:
            self.keys = [Fernet.generate_key(), Fernet.generate_key()]

    def fernet(self) -> MultiFernet:
        primary, others = self.keys[-1], self.keys[:-1]
        return MultiFernet([Fernet(primary), *(Fernet(k) for k in reversed(others))])


@dataclass(frozen=True)
class Payload:
    cloud: str
    user_id: str
    user_name: str
    user_domain_id: str
    methods: tuple[str, ...]
    roles: tuple[tuple[str, str], ...]          # (id, name)
    issued_at: float
    expires_at: float
    audit_ids: tuple[str, ...]
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    domain_id: str | None = None                 # a domain-scoped token
    domain_name: str | None = None
    system: bool = False
    app_cred_id: str | None = None
    trust_id: str | None = None                  # a trust-scoped token (OS-TRUST)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def encode(self) -> bytes:
        doc = {"v": PAYLOAD_VERSION, "c": self.cloud, "u": [self.user_id, self.user_name, self.user_domain_id],
               "m": list(self.methods), "r": [list(r) for r in self.roles], "i": round(self.issued_at, 6),
               "e": round(self.expires_at, 6), "a": list(self.audit_ids)}
        if self.project_id:
            doc["p"] = [self.project_id, self.project_name, self.project_domain_id]
        if self.domain_id:
            doc["d"] = [self.domain_id, self.domain_name]
        if self.system:
            doc["s"] = 1
        if self.app_cred_id:
            doc["ac"] = self.app_cred_id
        if self.trust_id:
            doc["t"] = self.trust_id
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> "Payload":
        doc = json.loads(raw)
        if doc.get("v") != PAYLOAD_VERSION:
            raise ValueError("unknown payload version")
        project = doc.get("p") or [None, None, None]
        domain = doc.get("d") or [None, None]
        return cls(cloud=doc["c"], user_id=doc["u"][0], user_name=doc["u"][1], user_domain_id=doc["u"][2],
                   methods=tuple(doc["m"]), roles=tuple((r[0], r[1]) for r in doc["r"]), issued_at=doc["i"],
                   expires_at=doc["e"], audit_ids=tuple(doc["a"]), project_id=project[0],
                   project_name=project[1], project_domain_id=project[2], domain_id=domain[0],
                   domain_name=domain[1], system=bool(doc.get("s")), app_cred_id=doc.get("ac"),
                   trust_id=doc.get("t"))


def audit_id() -> str:
    return secrets.token_urlsafe(16)[:22]


class TokenCodec:
    """Seal payloads into token strings and open them again (``None`` for anything not ours)."""

    def __init__(self, keys: KeyRepository) -> None:
        self.keys = keys
        self._fernet = keys.fernet()

    def refresh(self) -> None:
        self._fernet = self.keys.fernet()

    def seal(self, payload: Payload) -> str:
        return self._fernet.encrypt(payload.encode()).decode().rstrip("=")

    def open(self, token: str) -> Payload | None:
        try:
            padded = token + "=" * (-len(token) % 4)
            return Payload.decode(self._fernet.decrypt(padded.encode()))
        except (InvalidToken, ValueError, KeyError, IndexError, TypeError, UnicodeError):
            return None
