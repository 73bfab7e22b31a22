"""Role changes are records: the services, the API (every caller), the admin's
user pages and `manage.py create_user`. Every refusal leaves the users as they
were and writes no record."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from accounts.roles import user_role
from accounts.services import token_issue
from audit.models import Record
from audit.services.users import (
    user_active_set,
    user_create,
    user_flags_set,
    user_role_set,
)
from compliance_site.exceptions import Forbidden, ServiceError

pytestmark = pytest.mark.django_db

NOT_ADMINS = ["carol", "bob", "oscar", "rita", "alice"]


def role_records() -> list[dict[str, Any]]:
    return [
        json.loads(body)
        for body in Record.objects.filter(event_type="USER_ROLE_CHANGED")
        .order_by("seq")
        .values_list("body", flat=True)
    ]


def state() -> list[tuple[Any, ...]]:
    """Every user as the rules see them, and the log's length."""
    users = [
        (
            u.username,
            u.is_active,
            u.is_superuser,
            u.is_staff,
            sorted(g.name for g in u.groups.all()),
        )
        for u in User.objects.order_by("username").prefetch_related("groups")
    ]
    return [*users, ("records", Record.objects.count())]


@pytest.fixture
def root(people: dict[str, Any]) -> User:
    """A superuser (set up directly, as `createsuperuser` would)."""
    return User.objects.create_superuser("root", password="pw-root-Secret-1")


def as_user(user: User) -> APIClient:
    client = APIClient()
    token, _ = token_issue(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


# The services


def test_role_change_is_a_record_with_who_from_to_and_why(people):
    # given bob the trader; when adam (admin) makes him a risk manager
    user_role_set(
        user=people["bob"],
        role="risk_manager",
        reason="covers the desk",
        acting_user=people["adam"],
    )
    # then bob holds the new role, and the log says who, from, to and why
    assert user_role(User.objects.get(username="bob")) == "risk_manager"
    [record] = role_records()
    assert record["actor"] == {"type": "user", "id": "adam"}
    assert record["data"] == {
        "username": "bob",
        "action": "role_changed",
        "role_from": "trader",
        "role_to": "risk_manager",
        "reason": "covers the desk",
    }


def test_creation_and_deactivation_are_records(people):
    vera = user_create(
        username="vera",
        role="viewer",
        password="A-long-enough-passphrase-1",
        reason="external auditor, Q3",
        acting_user=people["adam"],
    )
    token, _ = token_issue(user=vera)
    user_active_set(user=vera, active=False, reason="audit finished", acting_user=people["adam"])
    vera.refresh_from_db()
    assert not vera.is_active
    assert not vera.api_tokens.exists()  # her tokens are gone with her access
    response = APIClient().get("/api/v1/events/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
    created, deactivated = (r["data"] for r in role_records())
    assert created == {
        "username": "vera",
        "action": "created",
        "role_from": None,
        "role_to": "viewer",
        "reason": "external auditor, Q3",
    }
    assert deactivated == {
        "username": "vera",
        "action": "deactivated",
        "role_from": "viewer",
        "role_to": None,
        "reason": "audit finished",
    }


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (
            lambda p: user_flags_set(
                user=p["bob"], is_superuser=True, reason="x", acting_user=p["adam"]
            ),
            "superuser_required",
        ),
        (
            lambda p: user_flags_set(
                user=p["bob"], is_staff=False, reason="x", acting_user=p["adam"]
            ),
            "superuser_required",
        ),
        (
            lambda p: user_flags_set(
                user=p["adam"], is_superuser=True, reason="x", acting_user=p["adam"]
            ),
            "superuser_required",
        ),
        (
            lambda p: user_role_set(
                user=p["adam"], role="viewer", reason="x", acting_user=p["adam"]
            ),
            "own_account",
        ),
        (
            lambda p: user_active_set(
                user=p["adam"], active=False, reason="x", acting_user=p["adam"]
            ),
            "own_account",
        ),
        (
            lambda p: user_role_set(
                user=p["bob"], role="admin", reason="x", acting_user=p["alice"]
            ),
            "admin_required",
        ),
        (
            lambda p: user_role_set(
                user=p["carol"], role="admin", reason="x", acting_user=p["carol"]
            ),
            "admin_required",
        ),
    ],
    ids=[
        "admin sets superuser",
        "admin sets staff",
        "admin makes self superuser",
        "own role",
        "own deactivation",
        "officer grants admin",
        "viewer grants self admin",
    ],
)
def test_refused_changes_change_nothing_and_write_no_record(people, call, code):
    before = state()
    with pytest.raises(Forbidden) as exc:
        call(people)
    assert exc.value.code == code
    assert state() == before


def test_only_a_superuser_changes_a_superuser(people, root):
    before = state()
    with pytest.raises(Forbidden) as exc:
        user_role_set(user=root, role="viewer", reason="x", acting_user=people["adam"])
    assert exc.value.code == "superuser_required"
    assert state() == before


def test_a_superuser_sets_the_flags_and_the_record_says_which(people, root):
    user_flags_set(user=people["adam"], is_superuser=True, reason="second root", acting_user=root)
    assert User.objects.get(username="adam").is_superuser
    [record] = role_records()
    assert record["actor"] == {"type": "user", "id": "root"}
    assert record["data"]["action"] == "flags_changed"
    assert record["data"]["flags"] == {"is_superuser": {"from": False, "to": True}}
    assert record["data"]["reason"] == "second root"


def test_a_reason_is_required(people):
    before = state()
    with pytest.raises(ServiceError) as exc:
        user_role_set(user=people["bob"], role="viewer", reason="  ", acting_user=people["adam"])
    assert exc.value.code == "reason_required"
    assert state() == before


def test_create_user_command_records_the_creation(monkeypatch, db):
    monkeypatch.setenv("DJANGO_USER_PASSWORD", "a long auditor passphrase")  # the validators apply
    call_command("create_user", "vera", role="viewer", noinput=True)
    [record] = role_records()
    assert record["actor"] == {"type": "system", "id": "manage.py create_user"}
    assert record["data"]["role_to"] == "viewer"
    assert record["data"]["username"] == "vera"


# The API: every caller


def test_admin_creates_a_user_through_the_api(people, client_for):
    response = client_for("adam").post(
        "/api/v1/users/",
        {"username": "vera", "password": "A-long-enough-passphrase-1", "role": "viewer"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["role"] == "viewer"
    assert user_role(User.objects.get(username="vera")) == "viewer"
    [record] = role_records()
    assert record["actor"]["id"] == "adam"
    assert record["data"]["role_to"] == "viewer"


def test_admin_lists_users_with_their_roles(people, client_for):
    listed = {u["username"]: u["role"] for u in client_for("adam").get("/api/v1/users/").json()}
    assert listed == {
        "adam": "admin",
        "alice": "compliance_officer",
        "bob": "trader",
        "carol": "viewer",
        "oscar": "trader",
        "rita": "risk_manager",
    }


def test_admin_changes_a_role_through_the_api(people, client_for):
    response = client_for("adam").post(
        "/api/v1/users/bob/role/", {"role": "viewer", "reason": "left the desk"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["role"] == "viewer"
    [record] = role_records()
    assert (record["data"]["role_from"], record["data"]["role_to"]) == ("trader", "viewer")


@pytest.mark.parametrize("name", [*NOT_ADMINS, None])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/users/", None),
        (
            "post",
            "/api/v1/users/",
            {"username": "mallory", "password": "A-long-enough-passphrase-1", "role": "admin"},
        ),
        ("post", "/api/v1/users/bob/role/", {"role": "admin", "reason": "promote"}),
        ("post", "/api/v1/users/oscar/role/", {"role": "admin", "reason": "promote"}),
    ],
)
def test_only_admins_reach_the_user_endpoints(people, client_for, name, method, path, body):
    # five roles below admin (oscar: a trader who owns nothing) and anonymous
    client = client_for(name) if name else APIClient()
    before = state()
    response = getattr(client, method)(path, body, format="json")
    assert response.status_code == (403 if name else 401)
    assert state() == before


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/api/v1/users/adam/role/", {"role": "viewer", "reason": "x"}, "own_account"),
        ("/api/v1/users/root/role/", {"role": "viewer", "reason": "x"}, "superuser_required"),
    ],
)
def test_api_refuses_own_role_and_superusers_to_a_non_superuser_admin(
    people, root, client_for, path, body, code
):
    before = state()
    response = client_for("adam").post(path, body, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == code
    assert state() == before


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/api/v1/users/nobody/role/", {"role": "viewer", "reason": "x"}, 404, "not_found"),
        ("/api/v1/users/bob/role/", {"role": "boss", "reason": "x"}, 400, "invalid"),
        ("/api/v1/users/bob/role/", {"role": "trader", "reason": "x"}, 409, "unchanged"),
        ("/api/v1/users/bob/role/", {"role": "viewer"}, 400, "invalid"),
        (
            "/api/v1/users/",
            {"username": "bob", "password": "A-long-enough-passphrase-1", "role": "viewer"},
            409,
            "user_exists",
        ),
        (
            "/api/v1/users/",
            {"username": "v", "password": "123", "role": "viewer"},
            400,
            "invalid_password",
        ),
    ],
)
def test_api_bad_input_is_a_4xx_with_a_code_and_nothing_stored(
    people, client_for, path, body, status, code
):
    before = state()
    response = client_for("adam").post(path, body, format="json")
    assert response.status_code == status
    assert response.json()["code"] == code
    assert state() == before


def test_a_superuser_may_change_an_admin_through_the_api(people, root):
    response = as_user(root).post(
        "/api/v1/users/adam/role/", {"role": "compliance_officer", "reason": "x"}, format="json"
    )
    assert response.status_code == 200
    assert role_records()[-1]["actor"]["id"] == "root"


# The admin's user pages


def admin_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def change_page(client: Client, user: User, **fields: Any) -> Any:
    data = {"role": user_role(user) or "viewer", "is_active": "on", "reason": "", **fields}
    data = {k: v for k, v in data.items() if v is not None}
    return client.post(f"/admin/accounts/user/{user.pk}/change/", data)


def test_admin_page_changes_a_role_through_the_service(people):
    response = change_page(
        admin_client(people["adam"]), people["bob"], role="viewer", reason="moved to audit"
    )
    assert response.status_code == 302
    assert user_role(User.objects.get(username="bob")) == "viewer"
    [record] = role_records()
    assert record["actor"]["id"] == "adam"
    assert record["data"]["reason"] == "moved to audit"


def test_admin_page_deactivates_through_the_service(people):
    response = change_page(
        admin_client(people["adam"]), people["bob"], is_active=None, reason="left the firm"
    )
    assert response.status_code == 302
    assert not User.objects.get(username="bob").is_active
    assert role_records()[-1]["data"]["action"] == "deactivated"


def test_admin_page_shows_no_flags_to_a_non_superuser_and_ignores_them(people):
    client = admin_client(people["adam"])
    page = client.get(f"/admin/accounts/user/{people['bob'].pk}/change/").content.decode()
    assert 'name="is_superuser"' not in page
    before = state()
    response = change_page(client, people["bob"], is_superuser="on", is_staff="on", reason="x")
    # nothing else changed on the form: refused as "Nothing to change", no record
    assert response.status_code == 200
    assert "Nothing to change" in response.content.decode()
    assert state() == before


def test_admin_page_refuses_own_role(people):
    before = state()
    response = change_page(admin_client(people["adam"]), people["adam"], role="viewer", reason="x")
    assert response.status_code == 200
    assert "Nobody changes their own role" in response.content.decode()
    assert state() == before


def test_admin_page_superusers_are_read_only_for_an_admin(people, root):
    client = admin_client(people["adam"])
    before = state()
    response = change_page(client, root, role="viewer", reason="x")
    assert response.status_code == 403
    password = client.post(
        f"/admin/accounts/user/{root.pk}/password/",
        {"password1": "Taken-over-123!", "password2": "Taken-over-123!"},
    )
    assert password.status_code == 403
    assert state() == before
    assert User.objects.get(username="root").check_password("pw-root-Secret-1")


def test_admin_page_superuser_sets_flags(people, root):
    response = change_page(
        admin_client(root), people["adam"], is_superuser="on", is_staff="on", reason="second root"
    )
    assert response.status_code == 302
    assert User.objects.get(username="adam").is_superuser
    assert role_records()[-1]["data"]["flags"] == {"is_superuser": {"from": False, "to": True}}


def test_admin_add_page_creates_through_the_service(people):
    response = admin_client(people["adam"]).post(
        "/admin/accounts/user/add/",
        {
            "username": "vera",
            "email": "",
            "password1": "A-long-enough-passphrase-1",
            "password2": "A-long-enough-passphrase-1",
            "role": "viewer",
            "reason": "external auditor",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert user_role(User.objects.get(username="vera")) == "viewer"
    assert role_records()[-1]["data"]["reason"] == "external auditor"


@pytest.mark.parametrize("name", NOT_ADMINS)
def test_admin_user_pages_are_closed_below_admin(people, name):
    client = admin_client(people[name])
    before = state()
    assert client.get("/admin/accounts/user/").status_code == 403
    response = change_page(client, people["oscar"], role="admin", reason="x")
    assert response.status_code == 403
    assert state() == before
