"""Evidence and projections are read-only in the admin: every such page is a
compliance_site.admin.ReadOnlyAdmin, and nobody (a superuser included) may
add, change or delete their rows through it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory
from django.urls import reverse

from compliance_site.admin import ReadOnlyAdmin

READ_ONLY = {
    "accounts.Agent",
    "approvals.ApprovalRequest",
    "audit.Checkpoint",
    "audit.EventType",
    "audit.Record",
    "reporting.LegalHold",
    "reporting.Report",
    "surveillance.AgentMarketRisk",
    "surveillance.AgentRiskLimit",
    "surveillance.Alert",
    "surveillance.ComplianceConfigVersion",
    "surveillance.KillSwitch",
    "surveillance.MarketRisk",
    "surveillance.Order",
}


def _registered() -> dict[str, Any]:
    return {model._meta.label: model_admin for model, model_admin in admin.site._registry.items()}


@pytest.fixture
def root(db: Any) -> Any:
    return get_user_model().objects.create_superuser("root", password="pw-root-Secret-1")


def test_every_evidence_page_uses_the_read_only_base() -> None:
    registered = _registered()
    read_only = {
        label for label, model_admin in registered.items() if isinstance(model_admin, ReadOnlyAdmin)
    }
    assert read_only == READ_ONLY


@pytest.mark.parametrize("label", sorted(READ_ONLY))
def test_superuser_may_not_add_change_or_delete(label: str, root: Any) -> None:
    model_admin = _registered()[label]
    request = RequestFactory().get("/")
    request.user = root
    row = model_admin.model()

    assert model_admin.has_view_permission(request, row) is True
    assert model_admin.has_add_permission(request) is False
    assert model_admin.has_change_permission(request) is False
    assert model_admin.has_change_permission(request, row) is False
    assert model_admin.has_delete_permission(request) is False
    assert model_admin.has_delete_permission(request, row) is False


@pytest.mark.parametrize("label", sorted(READ_ONLY))
def test_add_page_refuses_a_superuser_and_creates_nothing(label: str, root: Any) -> None:
    model = _registered()[label].model
    client = Client()
    client.force_login(root)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")
    before = model.objects.count()

    assert client.get(url).status_code == 403
    assert client.post(url, {}).status_code == 403
    assert model.objects.count() == before
