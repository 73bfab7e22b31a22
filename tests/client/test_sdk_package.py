"""compliance_client is a package of its own: what `pip install ./compliance_client`
installs, and what it depends on."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "compliance_client"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = out / "src" / "compliance_client"  # a copy: building writes build/ beside it
    shutil.copytree(
        PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--wheel-dir", str(out), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (built,) = out.glob("compliance_client-*.whl")
    return built


def test_the_wheel_holds_the_package_typed_and_nothing_else(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    code = {n for n in names if not n.startswith("compliance_client-")}
    assert "compliance_client/__init__.py" in code
    assert "compliance_client/py.typed" in code
    assert "compliance_client/venues/binance.py" in code
    assert "compliance_client/outbox.py" in code
    assert "compliance_client/__main__.py" in code
    assert all(n.startswith("compliance_client/") for n in code)
    assert not any(n.endswith(("pyproject.toml", "README.md")) for n in code)


def test_it_requires_cryptography_and_rfc8785_and_nothing_else(wheel):
    archive = zipfile.ZipFile(wheel)
    (meta,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    metadata = Parser().parsestr(archive.read(meta).decode())
    requires = sorted(
        r.split(">")[0].split("<")[0].strip() for r in metadata.get_all("Requires-Dist")
    )
    assert requires == ["cryptography", "rfc8785"]
    assert metadata["Requires-Python"] == ">=3.11"


def test_no_module_of_the_package_imports_django_or_the_project():
    allowed_third_party = {"cryptography", "rfc8785"}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = {node.module.split(".")[0]}
            else:
                continue
            foreign = {
                r for r in roots
                if r not in sys.stdlib_module_names and r not in allowed_third_party
                and r != "compliance_client"
            }  # fmt: skip
            assert not foreign, f"{path.relative_to(PACKAGE)} imports {foreign}"
