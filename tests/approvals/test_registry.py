"""The resolver registry: one resolver per kind, complete or refused."""

from __future__ import annotations

import pytest

from approvals.registry import (
    BaseResolver,
    UnknownKind,
    get_resolver,
    register_resolver,
    unregister_resolver,
)


@pytest.fixture
def kind():
    yield "registry_test_kind"
    unregister_resolver("registry_test_kind")


def test_registered_resolver_is_found_by_kind(kind):
    resolver = BaseResolver()
    register_resolver(kind, resolver)
    assert get_resolver(kind) is resolver


def test_refuses_a_second_resolver_for_the_same_kind(kind):
    register_resolver(kind, BaseResolver())
    with pytest.raises(ValueError, match="already registered"):
        register_resolver(kind, BaseResolver())


def test_registering_the_same_resolver_again_is_harmless(kind):
    # AppConfig.ready() may run more than once in some test runners
    resolver = BaseResolver()
    register_resolver(kind, resolver)
    register_resolver(kind, resolver)
    assert get_resolver(kind) is resolver


def test_refuses_a_resolver_missing_a_hook(kind):
    class Incomplete:
        def on_grant(self, request, acting_user):
            return None

    with pytest.raises(TypeError, match="on_deny, on_expire, owner_of"):
        register_resolver(kind, Incomplete())  # type: ignore[arg-type]


def test_unknown_kind_is_a_lookup_error():
    with pytest.raises(UnknownKind):
        get_resolver("never_registered")
