"""The log's Ed25519 signing key: loaded from the environment or a file, never
from the database, never one of the bots' keys."""

from __future__ import annotations

import base64
import os
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class LogKeyMissing(ImproperlyConfigured):
    pass


def _env_key() -> Ed25519PrivateKey | None:
    raw = os.environ.get("COMPLIANCE_LOG_PRIVATE_KEY")
    if not raw:
        return None
    seed = base64.b64decode(raw, validate=True)
    if len(seed) != 32:
        raise ImproperlyConfigured(
            "COMPLIANCE_LOG_PRIVATE_KEY must be base64 of a 32-byte Ed25519 seed"
        )
    return Ed25519PrivateKey.from_private_bytes(seed)


@cache
def private_key() -> Ed25519PrivateKey:
    key = _env_key()
    if key is not None:
        return key
    path = Path(settings.COMPLIANCE_LOG_KEY_FILE)
    if not path.exists():
        raise LogKeyMissing(
            f"No log signing key: set COMPLIANCE_LOG_PRIVATE_KEY or run `manage.py ensure_log_key` "
            f"to create {path}."
        )
    loaded = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{path} is not an Ed25519 private key")
    return loaded


def public_key_raw() -> bytes:
    return private_key().public_key().public_bytes_raw()


def key_name() -> str:
    return str(settings.COMPLIANCE_LOG_KEY_NAME)


def ensure_key_file() -> tuple[Path, bool]:
    """Create the key file (mode 0600) if no key is configured. Returns (path, created)."""
    path = Path(settings.COMPLIANCE_LOG_KEY_FILE)
    if _env_key() is not None or path.exists():
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    private_key.cache_clear()
    return path, True
