"""A model field for secrets the server must read back (webhook signing
secrets: every delivery is signed with one, so it cannot be hashed).

The column holds a Fernet token (AES-128-CBC and HMAC-SHA256, from the
`cryptography` package already used for signatures); the instance attribute
holds the plain secret. A database dump or a backup alone does not give the
secrets away. The keys come from the environment:

* COMPLIANCE_ENCRYPTION_KEYS: comma-separated Fernet keys (generate one with
  `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`).
  The first encrypts; every one decrypts, so a key is rotated by putting the
  new one first and re-saving (`manage.py rotate_encryption_keys`);
* unset: one key derived from DJANGO_SECRET_KEY (HKDF-SHA256), so that a
  development setup needs nothing more. Changing DJANGO_SECRET_KEY then makes
  the stored secrets unreadable: production sets its own keys.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

_INFO = b"compliance back-office: encrypted model fields"


class UnreadableSecret(Exception):
    """A stored secret that none of the configured keys decrypts."""


@functools.cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            secret_key.encode()
        )
        keys = (base64.urlsafe_b64encode(derived).decode("ascii"),)
    try:
        return MultiFernet([Fernet(key.encode("ascii")) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "COMPLIANCE_ENCRYPTION_KEYS must hold Fernet keys (32 url-safe base64 bytes each)"
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.COMPLIANCE_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(plain: str) -> str:
    return fernet().encrypt(plain.encode()).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode("ascii")).decode()
    except InvalidToken as exc:
        raise UnreadableSecret(
            "a stored secret cannot be decrypted with COMPLIANCE_ENCRYPTION_KEYS"
            " (or, unset, with the key derived from DJANGO_SECRET_KEY)"
        ) from exc


def reencrypt(token: str) -> str:
    """The same secret under the first key (`MultiFernet.rotate`)."""
    try:
        return fernet().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken as exc:
        raise UnreadableSecret("a stored secret cannot be decrypted to rotate it") from exc


class EncryptedTextField(models.TextField):
    """Text kept encrypted in the database (see the module's docstring).
    Not searchable or orderable by its value: every token differs."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return None if value is None else decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return None if value is None else encrypt(value)


def reencrypt_stored(progress: Any = None) -> int:
    """Put every stored value of every EncryptedTextField under the first
    key, one row at a time in its own statement; return how many were
    rewritten. Raises UnreadableSecret, naming nothing secret, if one cannot
    be read (then nothing of that row changed)."""
    from django.apps import apps
    from django.db import transaction
    from django.db.models import TextField, Value
    from django.db.models.functions import Cast

    done = 0
    for model in apps.get_models():
        fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        manager = model._base_manager
        for field in fields:
            # The stored token, not its decrypted value: read and compared as plain text.
            stored = Cast(field.attname, TextField())
            rows = list(
                manager.filter(**{f"{field.attname}__isnull": False})
                .annotate(_token=stored)
                .values_list("pk", "_token")
            )
            for key, token in rows:
                with transaction.atomic():
                    done += (
                        manager.filter(pk=key)
                        .alias(_token=stored)
                        .filter(_token=token)
                        .update(**{field.attname: Value(reencrypt(token), TextField())})
                    )
            if progress is not None:
                progress(f"{model._meta.label}.{field.name}: {len(rows)} value(s)")
    return done
