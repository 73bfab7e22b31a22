"""Per-kind resolvers: what happens when a request of a kind is granted, denied
or expires, and who owns it (for four-eyes).

The app that opens requests of a kind registers its resolver in its
`AppConfig.ready()`, so approvals never imports it (approvals sits left of
surveillance and reporting in the dependency picture). Resolvers are called
inside the deciding transaction, after the status change and its record
(APPROVAL_GRANTED/DENIED/EXPIRED), so the transaction already holds the request
row and the log head: lock your own rows there (the project's lock order is
approval row -> log head -> domain rows), write your own records (they follow
the approval's), and call out to nothing slow. If a resolver raises, the whole
decision rolls back with it (fail closed).

Optionally a resolver has `recheck(request) -> [reason, ...]`, run when a grant
is asked for, before anything changes: any reason refuses the grant (409
`recheck_failed`) and the request stays pending. And `context(request)`, what
the officer's page shows about the subject.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from accounts.models import User

    from .models import ApprovalRequest


@runtime_checkable
class Resolver(Protocol):
    def on_grant(self, request: ApprovalRequest, acting_user: User) -> None:
        """Carry out the held action (e.g. release the order)."""

    def on_deny(self, request: ApprovalRequest, acting_user: User) -> None:
        """Abandon the held action."""

    def on_expire(self, request: ApprovalRequest) -> None:
        """Abandon the held action because nobody decided in time."""

    def owner_of(self, request: ApprovalRequest) -> User | None:
        """The person accountable for the subject, who may therefore not decide on it."""


def recheck_of(resolver: Resolver, request: ApprovalRequest) -> list[dict[str, Any]]:
    """What the kind's optional `recheck(request)` says now: the reasons a grant
    must be refused (`[]`: none). Called inside the grant's transaction, before
    anything is written, so it may take the kind's locks that come before the
    approval row."""
    recheck = getattr(resolver, "recheck", None)
    return list(recheck(request)) if callable(recheck) else []


def context_of(resolver: Resolver, request: ApprovalRequest) -> dict[str, Any] | None:
    """The kind's optional `context(request)`: `{"facts": [(label, text)...],
    "recheck": [reason...]}` for the officer's page, or None."""
    context = getattr(resolver, "context", None)
    return context(request) if callable(context) else None


class BaseResolver:
    """Convenience base: no-op transitions, and the owner of the requesting agent
    as the subject's owner. Subclass and override what the kind needs."""

    def on_grant(self, request: ApprovalRequest, acting_user: User) -> None:
        return None

    def on_deny(self, request: ApprovalRequest, acting_user: User) -> None:
        return None

    def on_expire(self, request: ApprovalRequest) -> None:
        return None

    def owner_of(self, request: ApprovalRequest) -> User | None:
        agent = request.requested_by_agent
        return agent.owner if agent is not None else None


class UnknownKind(LookupError):
    """No resolver is registered for a kind: a deployment error, not a user error."""


_RESOLVERS: dict[str, Resolver] = {}


def register_resolver(kind: str, resolver: Resolver, *, replace: bool = False) -> None:
    """Register the resolver for `kind`. Registering a kind twice is refused
    (two apps claiming one kind is a bug) unless `replace=True` (tests)."""
    if not kind or len(kind) > 64:
        raise ValueError("kind must be 1..64 characters")
    missing = [
        name
        for name in ("on_grant", "on_deny", "on_expire", "owner_of")
        if not callable(getattr(resolver, name, None))
    ]
    if missing:
        raise TypeError(f"resolver for {kind!r} lacks {', '.join(missing)}")
    if kind in _RESOLVERS and not replace and _RESOLVERS[kind] is not resolver:
        raise ValueError(f"a resolver for kind {kind!r} is already registered")
    _RESOLVERS[kind] = resolver


def unregister_resolver(kind: str) -> None:
    """Remove a kind's resolver (tests)."""
    _RESOLVERS.pop(kind, None)


def get_resolver(kind: str) -> Resolver:
    try:
        return _RESOLVERS[kind]
    except KeyError:
        raise UnknownKind(f"no approval resolver registered for kind {kind!r}") from None


def is_registered(kind: str) -> bool:
    return kind in _RESOLVERS
