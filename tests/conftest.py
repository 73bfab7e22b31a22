"""Shared fixtures: one named person per role, agents with real Ed25519 keys,
API clients, and the append-only triggers kept in place for every test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from compliance_client.signing import Signer

PEOPLE = {
    "carol": "viewer",
    "bob": "trader",
    "oscar": "trader",  # a trader who owns nothing in the tests
    "rita": "risk_manager",
    "alice": "compliance_officer",
    "adam": "admin",
}


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    from django.conf import settings

    if not os.environ.get("COMPLIANCE_RUN_SLOW"):
        # The battery's crash and outage scenarios (tests/battery/) take minutes:
        # CI runs them (.ci/run sets COMPLIANCE_RUN_SLOW=1), a local `make test` not.
        slow = [item for item in items if item.get_closest_marker("slow")]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [item for item in items if not item.get_closest_marker("slow")]

    if not os.environ.get("COMPLIANCE_BENCH_RECORDS"):
        # Measurements run from `make bench` (bench/surveillance.py), never in the suite.
        measured = [item for item in items if item.get_closest_marker("bench")]
        if measured:
            config.hook.pytest_deselected(items=measured)
            items[:] = [item for item in items if not item.get_closest_marker("bench")]

    _require_or_skip(
        items,
        "postgres",
        available="postgresql" in settings.DATABASES["default"]["ENGINE"],
        required_by="COMPLIANCE_REQUIRE_POSTGRES",
        missing="DATABASE_URL is not PostgreSQL",
        reason="needs PostgreSQL: set DATABASE_URL=postgres://... (make test does in CI)",
    )
    _require_or_skip(
        items,
        "browser",
        available=browser_paths() is not None,
        required_by="COMPLIANCE_REQUIRE_BROWSER",
        missing="chromium and chromedriver are not installed",
        reason="needs Chromium: apt-get install chromium chromium-driver (.ci/run does)",
    )


def _require_or_skip(
    items: list[Any], marker: str, *, available: bool, required_by: str, missing: str, reason: str
) -> None:
    """Tests marked `marker` run when what they need is `available`; otherwise
    they are skipped with `reason`, unless the environment variable
    `required_by` is set (CI), which makes the lack an error instead."""
    needing = [item for item in items if marker in item.keywords]
    if available or not needing:
        return
    if os.environ.get(required_by):
        raise pytest.UsageError(
            f"{required_by} is set (CI) but {missing}: nothing may be skipped for want of it"
        )
    for item in needing:
        item.add_marker(pytest.mark.skip(reason=reason))


def browser_paths() -> tuple[str, str] | None:
    """Chromium and its driver (Debian's packages chromium and chromium-driver,
    which .ci/run installs): both, or None."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    return (chromium, chromedriver) if chromium and chromedriver else None


@pytest.fixture(autouse=True)
def _append_only_triggers(request: Any) -> Iterator[None]:
    """Keep the triggers installed while a test runs. A transactional test's
    teardown flushes (TRUNCATE/DELETE) every table, which the triggers refuse,
    so they are dropped just before that flush and reinstalled by the next test."""
    if "django_db_setup" not in request.fixturenames and not any(
        m.name == "django_db" for m in request.node.iter_markers()
    ):
        yield
        return
    request.getfixturevalue("django_db_blocker")
    db_fixture = "transactional_db" if _is_transactional(request) else "db"
    request.getfixturevalue(db_fixture)
    from audit import store

    store.triggers_install(connection)
    yield
    if db_fixture == "transactional_db":
        store.triggers_drop(connection)


@pytest.fixture(autouse=True)
def _fresh_node_cache() -> Iterator[None]:
    """The proofs' cache of Merkle nodes assumes that committed records stay
    forever, which a transactional test's flush breaks: every test starts empty."""
    from audit.services.tree import node_cache

    node_cache.clear()
    yield
    node_cache.clear()


def _is_transactional(request: Any) -> bool:
    if "transactional_db" in request.fixturenames or "live_server" in request.fixturenames:
        return True
    marker = request.node.get_closest_marker("django_db")
    return bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))


@pytest.fixture
def people(db: Any) -> dict[str, Any]:
    from accounts.services import user_create

    return {
        name: user_create(username=name, role=role, password="pw-" + name)
        for name, role in PEOPLE.items()
    }


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for(people: dict[str, Any]) -> Callable[[str], APIClient]:
    """An API client authenticated with a real bearer token for the named person."""
    from accounts.services import token_issue

    def make(name: str) -> APIClient:
        client = APIClient()
        token, _ = token_issue(user=people[name])
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


class BotHandle:
    def __init__(self, agent: Any, signer: Signer, api_key: str):
        self.agent = agent
        self.signer = signer
        self.api_key = api_key

    @property
    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.api_key}")
        return client

    def post_events(self, items: list[dict[str, Any]]) -> Any:
        return self.client.post("/api/v1/events/", {"events": items}, format="json")


@pytest.fixture
def make_bot(people: dict[str, Any]) -> Callable[..., BotHandle]:
    from audit.services.agents import agent_register

    def make(agent_id: str = "bot-1", owner: str | None = "bob") -> BotHandle:
        signer = Signer.generate(agent_id)
        agent, _key, api_key = agent_register(
            agent_id=agent_id,
            name=f"Bot {agent_id}",
            public_key=signer.public_key_b64,
            owner=people[owner] if owner else None,
            acting_user=people["rita"],
        )
        return BotHandle(agent, signer, api_key)

    return make


@pytest.fixture
def bot(make_bot: Callable[..., BotHandle]) -> BotHandle:
    return make_bot()


def holding_on(people: dict[str, Any]) -> None:
    """Orders over the threshold are held: a new install's config has
    approval_enabled off (the seed's default), so tests of held orders turn it
    on, as alice (a compliance officer) would."""
    from surveillance.services.config import config_current, config_update

    config = config_current().config
    config_update(config={**config, "approval_enabled": True}, acting_user=people["alice"])


def fill_payload(n: int = 1) -> dict[str, str]:
    return {"order_id": f"o-{n}", "fill_id": f"f-{n}", "quantity": "2", "price": "101.5"}


@pytest.fixture(scope="session", autouse=True)
def _log_signing_key() -> None:
    """Every test session has its own log key file in its temporary var dir."""
    from audit.log_key import ensure_key_file

    ensure_key_file()
