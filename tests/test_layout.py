"""The import rules of the layout, read from the source (ast) rather than from
what happens to be imported at run time, so a function-level import counts."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = ["accounts", "audit", "approvals", "surveillance", "reporting"]


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every module `path` imports, at any depth of the
    file, relative imports resolved; `from a import b` yields a.b when b is a
    module."""
    package = _module(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            yield node.lineno, source
            for alias in node.names:
                if _is_module(f"{source}.{alias.name}"):
                    yield node.lineno, f"{source}.{alias.name}"


def _services_modules() -> list[Path]:
    found = [ROOT / app / "services.py" for app in APPS]
    found += [p for app in APPS for p in (ROOT / app / "services").rglob("*.py")]
    found += list(ROOT.glob("*/*/services.py"))  # sub-packages: audit/webhooks/services.py
    return sorted(p for p in found if p.is_file())


def test_services_never_import_tasks() -> None:
    """Tasks import services to run them; services enqueue tasks by name
    (compliance_site.dispatch.publish), so the two never import each other."""
    modules = _services_modules()
    assert ROOT / "audit" / "webhooks" / "services.py" in modules
    assert ROOT / "surveillance" / "services" / "gate.py" in modules
    offences = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in modules
        for line, name in imports(path)
        if name.split(".")[-1] == "tasks"
    ]
    assert offences == []


def _published_names() -> list[tuple[str, str]]:
    found = []
    for app in [*APPS, "compliance_site"]:
        for path in (ROOT / app).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in {"publish", "publish_on_commit"}
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                ):
                    found.append((f"{path.relative_to(ROOT)}:{node.lineno}", node.args[0].value))
    return found


def test_every_task_published_by_name_is_registered() -> None:
    """A name is only checked when the task runs: a typo would leave the work
    to the sweeps. Every literal name given to publish is a registered task."""
    from compliance_site.dispatch import task_named

    published = _published_names()
    assert len(published) >= 6
    for _where, name in published:
        assert task_named(name).name == name


def test_other_apps_use_audit_services_not_its_modules() -> None:
    """audit.services is audit's public face: the other apps (and the site)
    import from it, never from audit.services.<module>, so audit may move code
    between its modules without touching its callers."""
    outside = [
        p
        for app in [*APPS, "compliance_site"]
        if app != "audit"
        for p in (ROOT / app).rglob("*.py")
    ]
    assert ROOT / "surveillance" / "services" / "gate.py" in outside
    offences = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in outside
        for line, name in imports(path)
        if name.startswith("audit.services.")
    ]
    assert offences == []
