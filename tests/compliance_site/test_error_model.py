"""One error model (issue 20): every refusal is a ServiceError subclass that the
one DRF exception handler maps to its status and body, and no view builds an
error response by hand."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest

from compliance_site.exceptions import (
    Conflict,
    Forbidden,
    Inconsistent,
    Invalid,
    NotFound,
    ServiceError,
    TooLarge,
    Unauthenticated,
    exception_handler,
)

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "approvals", "audit", "surveillance", "reporting", "compliance_site")


def _api_modules() -> list[Path]:
    found = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            parts = path.relative_to(ROOT).parts
            if "migrations" in parts:
                continue
            if path.name.startswith("apis") or "apis" in parts[:-1]:
                found.append(path)
    return sorted(found)


def _is_error_status(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value >= 400
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name.startswith(("HTTP_4", "HTTP_5"))


def _hand_built_errors(path: Path) -> list[str]:
    """Error responses written in a view: a Response/JsonResponse whose body
    has a "code" key or whose status is 4xx/5xx, and `_error`-style helpers."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in {"_error", "_bad_request"}:
            found.append(f"{path}:{node.lineno} def {node.name}")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name not in {"Response", "JsonResponse", "HttpResponse"}:
            continue
        body = node.args[0] if node.args else None
        has_code = isinstance(body, ast.Dict) and any(
            isinstance(k, ast.Constant) and k.value == "code" for k in body.keys
        )
        status = [kw.value for kw in node.keywords if kw.arg == "status"]
        if has_code or (status and _is_error_status(status[0])):
            found.append(f"{path}:{node.lineno}")
    return found


def test_the_grep_finds_the_api_modules_and_a_hand_built_error(tmp_path):
    # given the api modules of every app and one view that answers by hand
    names = {str(p.relative_to(ROOT)) for p in _api_modules()}
    assert {"surveillance/apis.py", "audit/apis/log.py", "audit/webhooks/apis.py"} <= names
    bad = tmp_path / "apis.py"
    bad.write_text(
        "def post(request):\n"
        "    return Response({'code': 'x', 'detail': 'y'}, status=400)\n"
        "def get(request):\n"
        "    return Response('gone', status=status.HTTP_410_GONE)\n"
        "def _error(exc):\n"
        "    return Response(exc.body(), status=exc.http_status)\n"
    )
    # then the check sees both answers and the helper
    assert len(_hand_built_errors(bad)) == 3


def test_no_api_module_builds_an_error_response_by_hand():
    found = [hit for path in _api_modules() for hit in _hand_built_errors(path)]
    assert found == [], "raise a ServiceError subclass instead (compliance_site.exceptions)"


def _all_subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_all_subclasses(sub)}
    return out


def _import_every_app_module() -> None:
    for app in APPS:
        package = importlib.import_module(app)
        for info in pkgutil.walk_packages(package.__path__, f"{app}."):
            if ".migrations" in info.name or info.name.endswith(("wsgi", "settings_test")):
                continue
            importlib.import_module(info.name)


def _samples() -> dict[type, tuple[ServiceError, int, dict[str, Any]]]:
    """Every ServiceError subclass in the apps: one instance, its status, its body."""
    from approvals.services import ApprovalRecheckFailed
    from audit.services.checkpoints import CheckpointError
    from audit.services.export import ExportError
    from audit.services.ingest import BatchRejected, EventIdConflict, ItemError
    from audit.services.tree import ProofRequestError
    from surveillance.services.gate import OrderConflict, OrderNotFound, OrderRejected

    items = [ItemError(0, "invalid_signature", "bad"), ItemError(2, "unknown_key", "who?")]
    listed = [
        {"index": 0, "code": "invalid_signature", "detail": "bad"},
        {"index": 2, "code": "unknown_key", "detail": "who?"},
    ]
    reasons = [{"code": "kill_switch", "limit": "global", "value": "active", "detail": "ks"}]
    return {
        Invalid: (Invalid("invalid", "no"), 400, {"code": "invalid", "detail": "no"}),
        Unauthenticated: (Unauthenticated("c", "d"), 401, {"code": "c", "detail": "d"}),
        Forbidden: (Forbidden("forbidden", "d"), 403, {"code": "forbidden", "detail": "d"}),
        NotFound: (NotFound("not_found", "d"), 404, {"code": "not_found", "detail": "d"}),
        Conflict: (Conflict("c", "d", index=1), 409, {"code": "c", "detail": "d", "index": 1}),
        TooLarge: (
            TooLarge("batch_too_large", "d"),
            413,
            {"code": "batch_too_large", "detail": "d"},
        ),
        Inconsistent: (
            Inconsistent("store_inconsistent", "d"),
            500,
            {"code": "store_inconsistent", "detail": "d"},
        ),
        BatchRejected: (
            BatchRejected(items),
            400,
            {
                "code": "invalid_events",
                "detail": "No event was stored: fix the listed items and resend the batch.",
                "errors": listed,
            },
        ),
        OrderRejected: (
            OrderRejected(items),
            400,
            {"code": "invalid_signature", "detail": "bad", "errors": listed},
        ),
        EventIdConflict: (
            EventIdConflict(3, "e-1"),
            409,
            {
                "code": "event_id_conflict",
                "detail": "event_id 'e-1' was already used for a different envelope",
                "index": 3,
                "event_id": "e-1",
            },
        ),
        OrderConflict: (
            OrderConflict("order_id_conflict", "taken"),
            409,
            {"code": "order_id_conflict", "detail": "taken"},
        ),
        OrderNotFound: (
            OrderNotFound("o-1"),
            404,
            {"code": "order_not_found", "detail": "no order 'o-1' for this agent"},
        ),
        ApprovalRecheckFailed: (
            ApprovalRecheckFailed(reasons),
            409,
            {
                "code": "recheck_failed",
                "detail": "The re-check at the grant failed: ks",
                "reasons": reasons,
            },
        ),
        CheckpointError: (
            CheckpointError("clock"),
            409,
            {"code": "checkpoint_refused", "detail": "clock"},
        ),
        ProofRequestError: (
            ProofRequestError("too big"),
            400,
            {"code": "invalid_proof_request", "detail": "too big"},
        ),
        ExportError: (
            ExportError("empty"),
            400,
            {"code": "invalid_export_range", "detail": "empty"},
        ),
    }


def test_every_service_error_subclass_has_a_mapping_under_test():
    _import_every_app_module()
    known = set(_samples())
    assert _all_subclasses(ServiceError) - known == set(), "add it to _samples()"


@pytest.mark.parametrize("cls", list(_samples()), ids=lambda cls: cls.__name__)
def test_each_service_error_maps_to_its_status_and_body(cls):
    exc, status, body = _samples()[cls]
    assert exc.http_status == status
    response = exception_handler(exc, {})
    assert response is not None
    assert response.status_code == status
    assert response.data == body
