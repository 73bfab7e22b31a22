"""Writes on users and credentials. Credentials are random 256-bit secrets, so
a plain SHA-256 is the right storage hash (a slow KDF protects guessable
passwords, not random keys) and allows a single indexed lookup per request."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from .models import ROLE_ORDER, ApiToken, User

TOKEN_PREFIX = "cbt_"  # human bearer token
API_KEY_PREFIX = "cbk_"  # agent API key


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


@transaction.atomic
def user_create(*, username: str, role: str, password: str | None, email: str = "") -> User:
    """Create a user holding exactly one role, without a record: the building
    block of audit.services.users.user_create, which checks who may and
    records it (people go through that one). Every role can log in to the
    admin (viewers see it read-only). Raises ValueError for an unknown role or
    a taken name."""
    if role not in ROLE_ORDER:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLE_ORDER)}")
    if User.objects.filter(username=username).exists():
        raise ValueError(f"user {username!r} already exists")
    user = User(username=username, email=email, is_staff=True)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    user.groups.set([Group.objects.get(name=role)])
    return user


@transaction.atomic
def user_set_role(*, user: User, role: str) -> User:
    """Replace the user's role group, without a record: only for
    audit.services.users.user_role_set, which checks and records it."""
    if role not in ROLE_ORDER:
        raise ValueError(f"unknown role {role!r}")
    user.groups.set([Group.objects.get(name=role)])
    return user


def token_issue(*, user: User) -> tuple[str, datetime]:
    """Issue an expiring bearer token; the plain token is returned once, only its hash is kept."""
    token = new_secret(TOKEN_PREFIX)
    expires_at = timezone.now() + settings.COMPLIANCE_TOKEN_TTL
    ApiToken.objects.create(
        user=user, key_hash=hash_secret(token), prefix=token[:12], expires_at=expires_at
    )
    ApiToken.objects.filter(user=user, expires_at__lt=timezone.now()).delete()
    return token, expires_at
