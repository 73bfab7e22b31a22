"""Everything a refused request must leave unchanged: full rows of every table
of the project's apps (the tokens and users that logging in touches aside)."""

from __future__ import annotations

from typing import Any

from django.apps import apps

SKIP = {"apitoken", "user"}


def every_row() -> dict[str, Any]:
    state: dict[str, Any] = {}
    for label in ("accounts", "audit", "approvals", "surveillance", "reporting"):
        for model in apps.get_app_config(label).get_models():
            if model._meta.model_name in SKIP:
                continue
            state[model._meta.label] = list(model.objects.order_by("pk").values_list())
    return state
