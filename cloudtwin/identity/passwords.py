"""Password and secret hashing: Keystone never stores a user's password or an application
credential's secret, only a salted hash (PBKDF2-SHA256 here, with a per-secret salt)."""

from __future__ import annotations

import hashlib
import hmac
import os

ITERATIONS = 20_000   # ~10 ms on a small core: a login stays cheap for a test run, a leaked hash costly


def hash_secret(secret: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, ITERATIONS)
    return f"pbkdf2-sha256${ITERATIONS}${salt.hex()}${digest.hex()}"


def check_secret(secret: str, stored: str) -> bool:
    try:
        _, rounds, salt, digest = stored.split("$")
        got = hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(salt), int(rounds))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)
