"""The package README's quick start, as a new bot developer runs it: a fresh
venv holding nothing but `pip install ./compliance_client`, the README's own
commands and code (only the URL, the token and the api_key filled in),
against a live server. What the server stored afterwards is checked."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from tests.client.test_sdk_package import PACKAGE

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

README_URL = "http://127.0.0.1:8000"


# The package's README and the main README's bot section: the same steps, each its own text.
QUICK_STARTS = {
    "package README": (PACKAGE / "README.md", "## Quick start"),
    "main README": (PACKAGE.parent / "README.md", "## Bots"),
}


def quick_start(readme: Path, heading: str) -> tuple[list[str], str]:
    """A README's quick start: its shell commands (continuation lines joined)
    and its Python block."""
    section = readme.read_text().split(heading + "\n", 1)[1].split("\n## ", 1)[0]
    (shell,) = re.findall(r"```sh\n(.*?)```", section, re.S)
    (python,) = re.findall(r"```python\n(.*?)```", section, re.S)
    commands = [
        re.sub(r"\s+#.*$", "", line).strip()
        for line in shell.replace("\\\n", " ").splitlines()
        if line.strip()
    ]
    return commands, python


@pytest.fixture
def server(transactional_db):
    from tests.client import live

    running = live.start(live.free_port())
    yield running
    live.stop(running)


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    """A venv with nothing but the package (and what it declares), installed
    from a copy of the folder, as `pip install ./compliance_client` does."""
    root = tmp_path_factory.mktemp("bot")
    venv.create(root / "venv", with_pip=True)
    source = root / "src" / "compliance_client"
    shutil.copytree(
        PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    python = root / "venv" / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(source)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return python


@pytest.mark.parametrize("readme", QUICK_STARTS)
def test_the_readme_quick_start_runs_in_a_venv_with_only_the_package(
    readme, fresh_venv, server, people, tmp_path
):
    from accounts.services import token_issue
    from audit.models import Record
    from surveillance.models import Order

    python = str(fresh_venv)
    installed = subprocess.run(
        [python, "-m", "pip", "list", "--format=json"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    names = {p["name"].lower() for p in json.loads(installed.stdout)}
    assert "django" not in names
    assert {"compliance-client", "cryptography", "rfc8785"} <= names

    token, _ = token_issue(user=people["rita"])  # a risk manager registers bots
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TOKEN": token}
    commands, code = quick_start(*QUICK_STARTS[readme])
    outputs = []
    for command in commands:
        argv = shlex.split(command.replace(README_URL, server.url).replace('"$TOKEN"', token))
        assert argv[0] == "python"
        done = subprocess.run(
            [python, *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert (tmp_path / "bot-1.key").stat().st_mode & 0o777 == 0o600
    api_key = json.loads(outputs[-1])["api_key"]

    script = f"API_KEY = {api_key!r}\n" + code.replace(README_URL, server.url)
    done = subprocess.run(
        [python, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr

    order = Order.objects.get(agent__agent_id="bot-1", order_id="o-1")
    assert (order.decision, order.status) == ("accepted", "filled")
    fills = Record.objects.filter(agent_id="bot-1", event_type="ORDER_FILLED")
    assert [r.as_dict()["source"]["envelope"]["payload"]["fill_id"] for r in fills] == ["f-1"]
    outbox = subprocess.run(
        [python, "-m", "compliance_client", "outbox", "bot-1.outbox", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert {k: json.loads(outbox.stdout)[k] for k in ("pending", "delivered", "dead_letters")} == {
        "pending": 0,
        "delivered": 1,
        "dead_letters": 0,
    }
