"""The first hour, as the README tells it: a fresh copy of the project,
`make run` in one shell, and every README command typed in a second shell
with nothing exported. The static files and the API docs are served by the
app itself, from its own files."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MARK = "<!-- first-hour-commands"

pytestmark = pytest.mark.slow


def readme_commands() -> list[str]:
    """The lines of the README's first-hour block (the fenced block after MARK)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text[text.index(MARK) :]
    block = re.search(r"```sh\n(.*?)```", after, re.S)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.strip()]


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    """A new login shell's environment: nothing of the project's set."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_copy(dest: Path) -> Path:
    """The project's files as a clone has them (tracked and new, no var/),
    with this checkout's virtualenv linked in."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.is_file():
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, Path]]:
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("needs the project's .venv (make test creates it)")
    project = fresh_copy(tmp_path_factory.mktemp("clone"))
    home = tmp_path_factory.mktemp("home")
    port = free_port()
    log = (project / "make-run.log").open("wb")
    # `-o .venv/.installed`: the copy shares this checkout's virtualenv, which
    # must not be reinstalled from the copy (its editable install would then
    # point at a directory deleted after the test).
    proc = subprocess.Popen(
        ["make", "-o", ".venv/.installed", "run", f"PORT={port}"],
        cwd=project,
        env=bare_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (project / "make-run.log").read_text()
            try:
                if get(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (project / "make-run.log").read_text()
            time.sleep(1)
        yield project, base, home
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_make_run_serves_the_admin_with_its_css_and_a_front_page(running):
    _project, base, _home = running
    status, css = get(f"{base}/static/admin/css/base.css")
    assert status == 200
    assert b"body" in css
    status, login = get(f"{base}/admin/login/")
    assert status == 200
    assert b"/static/admin/css/base.css" in login
    # the admin's "View site" link goes to "/", which answers
    status, front = get(f"{base}/")
    assert status == 200
    assert b'href="/admin/"' in front
    assert b'href="/api/docs/"' in front


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_the_api_docs_need_no_other_host(running, page):
    _project, base, _home = running
    status, html = get(base + page)
    assert status == 200
    assets = re.findall(rb'(?:src|href)="([^"]+)"', html)
    scripts = [a.decode() for a in assets if a.endswith(b".js")]
    assert scripts, html[:500]
    for asset in assets:
        assert not asset.startswith((b"http:", b"https:", b"//")), asset
    for script in scripts:
        status, body = get(base + script)
        assert status == 200, script
        assert len(body) > 1000, script
    assert b"<script>" not in html  # every script from a URL: a strict CSP allows the page


def test_every_readme_command_works_in_a_second_shell_with_nothing_exported(running):
    project, base, home = running
    commands = readme_commands()
    assert any("create_user" in command for command in commands)
    for command in commands:
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=project,
            env=bare_env(home),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
    # the user made in the second shell logs in to the running server
    request = urllib.request.Request(
        f"{base}/api/v1/auth/token/",
        data=json.dumps({"username": "alice", "password": "correct horse battery"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        assert json.loads(response.read())["token"]
