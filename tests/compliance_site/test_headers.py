"""Headers and docs (issue 18, item 9): a Content-Security-Policy that the
admin and the API docs work under, and the schema and docs behind a login in
production (COMPLIANCE_API_DOCS_PUBLIC)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    out: dict[str, list[str]] = {}
    for directive in header.split(";"):
        name, *values = directive.split()
        out[name] = values
    return out


def test_every_page_carries_a_policy_that_allows_no_inline_script(client_for):
    for response in (
        Client().get("/admin/login/"),
        client_for("carol").get("/api/v1/alerts/"),
        client_for("carol").get("/api/docs/"),
    ):
        csp = policy(response)
        assert csp["default-src"] == ["'self'"]
        assert "'unsafe-inline'" not in csp["script-src"]
        assert "'unsafe-eval'" not in csp["script-src"]
        assert csp["object-src"] == ["'none'"]
        assert csp["frame-ancestors"] == ["'none'"]


def test_admin_pages_have_no_inline_script(people):
    """The stock admin works under script-src 'self': its pages load scripts
    from files only (an inline <script> body would be blocked)."""
    browser = Client()
    browser.force_login(people["alice"])
    for url in ("/admin/", "/admin/approvals/approvalrequest/", "/admin/surveillance/alert/"):
        response = browser.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        inline = [
            body
            for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
            if "src=" not in attrs and "application/json" not in attrs and body.strip()
        ]
        assert inline == [], (url, inline[:1])


def test_docs_page_loads_its_init_script_from_a_url(client_for):
    """Swagger UI's page under the CSP: every script has a src allowed by
    script-src (this origin, or the Swagger UI asset host in force)."""
    response = client_for("carol").get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts
    assert all("src=" in attrs and not body.strip() for attrs, body in scripts)
    allowed = policy(response)["script-src"]
    for attrs, _ in scripts:
        src = re.search(r'src="([^"]+)"', attrs).group(1)
        assert src.startswith("/") or any(src.startswith(a) for a in allowed if "//" in a), src
    init = re.search(r'src="(/api/docs/[^"]*script[^"]*)"', html).group(1)
    script = client_for("carol").get(init.replace("&amp;", "&"))
    assert script.status_code == 200
    assert b"SwaggerUIBundle" in script.content


def test_schema_and_docs_need_a_login_in_production(api):
    schema = api.get("/api/schema/")
    assert schema.status_code == 401
    assert schema.json()["code"] == "not_authenticated"
    docs = api.get("/api/docs/")
    assert docs.status_code == 302
    assert docs["Location"].startswith("/admin/login/?next=")


def test_schema_and_docs_can_be_public(api, settings):
    """COMPLIANCE_API_DOCS_PUBLIC=1 (the development default) opens them."""
    settings.COMPLIANCE_API_DOCS_PUBLIC = True
    assert api.get("/api/schema/").status_code == 200
    assert api.get("/api/docs/").status_code == 200


def test_the_bots_hot_paths_skip_the_policy(bot):
    response = bot.client.get("/api/v1/orders/nothing/")
    assert "Content-Security-Policy" not in response
    assert response["X-Content-Type-Options"] == "nosniff"
