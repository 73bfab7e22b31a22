"""Who holds which role: creating users, changing roles, (de)activating, and
the superuser and staff flags.

These live in audit, not accounts, for the reason agents do: each change is
evidence, recorded as USER_ROLE_CHANGED in the same transaction (accounts may
not import audit). The rules, enforced here whoever calls (API, admin,
`manage.py create_user`):

- only an admin (the admin role, or a superuser) changes users;
- nobody changes their own role, activity or flags;
- only a superuser touches the superuser and staff flags, or changes a
  superuser in any way (a superuser is an admin whatever their role says, so
  an admin who could edit one could make themselves one);
- every change gives a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts import services as accounts_services
from accounts.models import ROLE_ORDER, Role, User
from accounts.roles import has_role, user_role
from compliance_site.exceptions import Conflict, Forbidden, Invalid

from .log import Actor, record_event


@dataclass(frozen=True)
class UserChange:
    """What a change would do to one user, for the refusal check."""

    role: str | None = None
    is_active: bool | None = None
    is_superuser: bool | None = None
    is_staff: bool | None = None

    @property
    def touches_flags(self) -> bool:
        return self.is_superuser is not None or self.is_staff is not None


def user_change_refusal(*, acting_user: Any, target: User | None, change: UserChange) -> None:
    """Raise the refusal this change meets, if any. The admin's forms call it
    to show the refusal on the form; every service calls it again under its lock."""
    if not has_role(acting_user, Role.ADMIN):
        raise Forbidden("admin_required", "Only an admin manages users and roles.")
    if change.role is not None and change.role not in ROLE_ORDER:
        raise Invalid(
            "invalid_role", f"unknown role {change.role!r}; choose one of {', '.join(ROLE_ORDER)}"
        )
    superuser = bool(getattr(acting_user, "is_superuser", False))
    if change.touches_flags and not superuser:
        raise Forbidden(
            "superuser_required", "Only a superuser may set the superuser or staff flag."
        )
    if target is None:
        return
    if target.pk == getattr(acting_user, "pk", None):
        raise Forbidden(
            "own_account",
            "Nobody changes their own role, activity or flags: another admin must.",
        )
    if target.is_superuser and not superuser:
        raise Forbidden("superuser_required", "Only a superuser may change a superuser's account.")


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", "Give a reason: it goes into the record.")
    return reason


def _record(
    acting_user: Any,
    actor: Actor | None,
    *,
    username: str,
    action: str,
    role_from: str | None,
    role_to: str | None,
    reason: str,
    **extra: Any,
) -> None:
    record_event(
        "USER_ROLE_CHANGED",
        actor=actor or Actor.for_user(acting_user),
        data={
            "username": username,
            "action": action,
            "role_from": role_from,
            "role_to": role_to,
            "reason": reason,
            **extra,
        },
    )


def _locked(user: User) -> User:
    return User.objects.select_for_update().get(pk=user.pk)


@transaction.atomic
def user_create(
    *,
    username: str,
    role: str,
    password: str | None,
    reason: str,
    acting_user: Any,
    email: str = "",
    actor: Actor | None = None,
) -> User:
    """Create a user holding one role (admins). `acting_user=None` with an
    `actor` is the operator's bootstrap from the command line (`manage.py
    create_user`, which runs with the database's own rights); every other
    caller is a person checked by user_change_refusal, whose password must
    pass the configured validators."""
    if acting_user is not None:
        user_change_refusal(acting_user=acting_user, target=None, change=UserChange(role=role))
    elif actor is None:
        raise Invalid("actor_required", "name who creates the user")
    elif role not in ROLE_ORDER:
        raise Invalid("invalid_role", f"unknown role {role!r}")
    reason = _reason(reason)
    if not username or len(username) > 150:
        raise Invalid("invalid_username", "username must be 1 to 150 characters")
    if password and acting_user is not None:  # the command validates what it prompts for
        try:
            validate_password(password, User(username=username, email=email))
        except ValidationError as exc:
            raise Invalid("invalid_password", " ".join(exc.messages)) from exc
    if User.objects.filter(username=username).exists():
        raise Conflict("user_exists", f"user {username!r} already exists")
    user = accounts_services.user_create(
        username=username, role=role, password=password, email=email
    )
    _record(
        acting_user,
        actor,
        username=username,
        action="created",
        role_from=None,
        role_to=role,
        reason=reason,
    )
    return user


@transaction.atomic
def user_role_set(*, user: User, role: str, reason: str, acting_user: Any) -> User:
    """Give `user` exactly `role` (admins; never their own; a superuser's only
    by a superuser). Setting the role the user already holds is a conflict."""
    user_change_refusal(acting_user=acting_user, target=user, change=UserChange(role=role))
    reason = _reason(reason)
    locked = _locked(user)
    user_change_refusal(acting_user=acting_user, target=locked, change=UserChange(role=role))
    before = _held_role(locked)
    if before == role:
        raise Conflict("unchanged", f"{locked.username} already holds {role}")
    accounts_services.user_set_role(user=locked, role=role)
    _record(
        acting_user,
        None,
        username=locked.username,
        action="role_changed",
        role_from=before,
        role_to=role,
        reason=reason,
    )
    return locked


def _held_role(user: User) -> str | None:
    """The role group the user holds (not counting the superuser flag)."""
    names = set(user.groups.values_list("name", flat=True))
    held = [r for r in ROLE_ORDER if r in names]
    return held[-1] if held else None


@transaction.atomic
def user_active_set(*, user: User, active: bool, reason: str, acting_user: Any) -> User:
    """Deactivate (no login, no token, no API call; records keep the name) or
    reactivate a user. Users are never deleted: records refer to them."""
    change = UserChange(is_active=active)
    user_change_refusal(acting_user=acting_user, target=user, change=change)
    reason = _reason(reason)
    locked = _locked(user)
    user_change_refusal(acting_user=acting_user, target=locked, change=change)
    if locked.is_active == active:
        state = "active" if active else "inactive"
        raise Conflict("unchanged", f"{locked.username} is already {state}")
    locked.is_active = active
    locked.save(update_fields=["is_active"])
    if not active:
        locked.api_tokens.all().delete()
    role = _held_role(locked)
    _record(
        acting_user,
        None,
        username=locked.username,
        action="reactivated" if active else "deactivated",
        role_from=None if active else role,
        role_to=role if active else None,
        reason=reason,
    )
    return locked


@transaction.atomic
def user_flags_set(
    *,
    user: User,
    reason: str,
    acting_user: Any,
    is_superuser: bool | None = None,
    is_staff: bool | None = None,
) -> User:
    """Set the superuser and staff flags (superusers only; never their own)."""
    change = UserChange(is_superuser=is_superuser, is_staff=is_staff)
    user_change_refusal(acting_user=acting_user, target=user, change=change)
    reason = _reason(reason)
    locked = _locked(user)
    user_change_refusal(acting_user=acting_user, target=locked, change=change)
    flags: dict[str, dict[str, bool]] = {}
    for name, value in (("is_superuser", is_superuser), ("is_staff", is_staff)):
        if value is not None and getattr(locked, name) != value:
            flags[name] = {"from": getattr(locked, name), "to": value}
            setattr(locked, name, value)
    if not flags:
        raise Conflict("unchanged", "the flags already have these values")
    before = user_role(User.objects.get(pk=locked.pk))
    locked.save(update_fields=list(flags))
    after = user_role(User.objects.get(pk=locked.pk))
    _record(
        acting_user,
        None,
        username=locked.username,
        action="flags_changed",
        role_from=before,
        role_to=after,
        reason=reason,
        flags=flags,
    )
    return locked
