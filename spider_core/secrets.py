"""Credential encryption at rest with a per-installation key.

CB-Spider encrypts credential values with AES-CTR under a key compiled into the binary. Here every
installation gets its own random 256-bit key in ``$SPIDER_ROOT/secret.key`` (mode 0600, created on
first use), and values are sealed with AES-256-GCM, so a copied database is useless without the key
and a tampered value fails to decrypt instead of yielding garbage.
"""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from spider_core.errors import SpiderError

KEY_FILE_NAME = "secret.key"
_NONCE = 12


class CredentialCipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("credential key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def for_root(cls, root: Path) -> "CredentialCipher":
        return cls(load_or_create_key(root / KEY_FILE_NAME))

    def encrypt(self, plain: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plain.encode("utf-8"), None)
        return base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            raw = base64.b64decode(token.encode("ascii"), validate=True)
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], None).decode("utf-8")
        except (InvalidTag, ValueError, UnicodeError) as exc:
            raise SpiderError("credential value cannot be decrypted with this installation's key "
                              f"({KEY_FILE_NAME} was replaced or the MetaDB was copied)") from exc


def load_or_create_key(path: Path) -> bytes:
    """Read the key file, creating it atomically with mode 0600 if it does not exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, 0o600)  # never leave the key readable by others
        key = path.read_bytes()
        if len(key) != 32:
            raise SpiderError(f"{path} is not a valid 32-byte key file")
        return key
    key = os.urandom(32)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key
