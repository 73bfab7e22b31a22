"""Login brute force is contained (issue 18, item 2): failed logins are limited
per account and per address on both doors (the token endpoint and the admin
login form), X-Forwarded-For counts only from a trusted proxy, and the
password validators apply to create_user --noinput too."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken, User

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token/"


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()  # DRF keeps its throttle history in the cache
    yield
    cache.clear()


@pytest.fixture
def limit(settings):
    settings.AXES_FAILURE_LIMIT = 5
    return 5


def guess(client: APIClient, username: str, password: str, **extra):
    return client.post(TOKEN, {"username": username, "password": password}, format="json", **extra)


def test_token_endpoint_locks_an_account_after_the_limit(people, limit):
    attacker = APIClient()
    for n in range(limit - 1):
        assert guess(attacker, "adam", f"wrong-{n}").status_code == 401
    assert guess(attacker, "adam", "wrong-last").status_code == 429  # the limit-th failure
    # now even the right password is refused, with a message that says why
    response = guess(APIClient(REMOTE_ADDR="10.9.9.9"), "adam", "pw-adam")
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "login_locked_out"
    assert "Too many failed logins" in body["detail"]
    assert int(response["Retry-After"]) > 0
    assert not ApiToken.objects.filter(user=people["adam"]).exists()
    assert AccessAttempt.objects.filter(username="adam").exists()


def test_token_endpoint_locks_an_address_across_accounts(people, limit):
    attacker = APIClient(REMOTE_ADDR="203.0.113.7")
    for n in range(limit - 1):
        assert guess(attacker, f"nobody-{n}", "x").status_code == 401
    assert guess(attacker, "nobody-last", "x").status_code == 429
    assert guess(attacker, "carol", "pw-carol").status_code == 429
    # another address is not locked out
    assert guess(APIClient(REMOTE_ADDR="203.0.113.8"), "carol", "pw-carol").status_code == 201


def test_rotating_x_forwarded_for_does_not_escape_the_limits(people, limit):
    """An untrusted client's X-Forwarded-For is ignored: 200 guesses with a new
    forwarded address each meet the lockout (and the throttle) all the same."""
    attacker = APIClient(REMOTE_ADDR="198.51.100.1")
    statuses = [
        guess(
            attacker, f"user-{n}", "x", HTTP_X_FORWARDED_FOR=f"10.0.{n // 250}.{n % 250}"
        ).status_code
        for n in range(200)
    ]
    assert statuses[: limit - 1] == [401] * (limit - 1)
    assert set(statuses[limit - 1 :]) == {429}


def test_x_forwarded_for_is_believed_from_a_trusted_proxy(people, limit, settings):
    settings.COMPLIANCE_TRUSTED_PROXIES = ["127.0.0.0/8"]
    proxy = APIClient(REMOTE_ADDR="127.0.0.1")
    for n in range(limit - 1):
        forwarded = {"HTTP_X_FORWARDED_FOR": "203.0.113.50"}
        assert guess(proxy, f"nobody-{n}", "x", **forwarded).status_code == 401
    assert guess(proxy, "nobody", "x", HTTP_X_FORWARDED_FOR="203.0.113.50").status_code == 429
    # the locked-out address is the client behind the proxy, not the proxy
    assert guess(proxy, "carol", "pw-carol", HTTP_X_FORWARDED_FOR="203.0.113.50").status_code == 429
    assert guess(proxy, "carol", "pw-carol", HTTP_X_FORWARDED_FOR="203.0.113.51").status_code == 201


def test_client_ip_takes_the_first_untrusted_address_from_the_right(settings, rf):
    from compliance_site.proxies import client_ip

    settings.COMPLIANCE_TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 5.6.7.8, 10.0.0.1")
    assert client_ip(request) == "5.6.7.8"
    untrusted = rf.get("/", REMOTE_ADDR="9.9.9.9", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert client_ip(untrusted) == "9.9.9.9"


def test_admin_login_form_is_limited_too(people, limit):
    browser = Client(REMOTE_ADDR="192.0.2.10")
    for n in range(limit - 1):
        response = browser.post(
            "/admin/login/", {"username": "alice", "password": f"wrong-{n}", "next": "/admin/"}
        )
        assert response.status_code == 200  # the form again, with its error
    response = browser.post(
        "/admin/login/", {"username": "alice", "password": "wrong-last", "next": "/admin/"}
    )
    assert response.status_code == 429
    response = browser.post(
        "/admin/login/", {"username": "alice", "password": "pw-alice", "next": "/admin/"}
    )
    assert response.status_code == 429
    assert response.json()["code"] == "login_locked_out"
    assert "_auth_user_id" not in browser.session


@pytest.mark.parametrize("password", ["1", "password", "12345678901", "short"])
def test_create_user_noinput_applies_the_password_validators(monkeypatch, password):
    monkeypatch.setenv("DJANGO_USER_PASSWORD", password)
    with pytest.raises(CommandError):
        call_command("create_user", "root", "--role", "admin", "--noinput")
    assert not User.objects.filter(username="root").exists()


def test_create_user_noinput_refuses_a_password_like_the_name(monkeypatch):
    monkeypatch.setenv("DJANGO_USER_PASSWORD", "margaret-hamilton")
    with pytest.raises(CommandError):
        call_command("create_user", "margaret-hamilton", "--role", "viewer", "--noinput")
    assert not User.objects.filter(username="margaret-hamilton").exists()


def test_create_user_noinput_accepts_a_strong_password(monkeypatch):
    monkeypatch.setenv("DJANGO_USER_PASSWORD", "correct horse battery staple 42")
    call_command("create_user", "root", "--role", "admin", "--noinput")
    assert User.objects.get(username="root").check_password("correct horse battery staple 42")
