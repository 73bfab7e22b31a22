"""Bot set-up without raw HTTP, and a look into an outbox.

    python -m compliance_client keygen --out bot-1.key
    python -m compliance_client register --url URL --agent-id bot-1 --name "Bot 1" --key bot-1.key
    python -m compliance_client rotate-key --url URL --agent-id bot-1 --key bot-1-new.key \\
        [--revoke OLD_KEY_ID]
    python -m compliance_client outbox bot-1.outbox [--json]

`register` and `rotate-key` act for a person (a risk manager or higher): pass
their bearer token with --token or COMPLIANCE_TOKEN (from
`POST /api/v1/auth/token/`). Exit status: 0 done, 1 refused or failed, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from collections.abc import Sequence
from typing import Any

from .http import ComplianceError, Http
from .outbox import OutboxError, inspect
from .signing import Signer


def _token(args: argparse.Namespace) -> str:
    token = args.token or os.environ.get("COMPLIANCE_TOKEN")
    if not token:
        raise SystemExit("error: pass --token or set COMPLIANCE_TOKEN (a person's bearer token)")
    return str(token)


def _call(url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    http = Http(url, token)
    try:
        status, _, data = http.send(
            method, path, None if body is None else json.dumps(body).encode()
        )
    finally:
        http.close()
    if status >= 400:
        raise ComplianceError(status, data)
    return data


def cmd_keygen(args: argparse.Namespace) -> int:
    signer = Signer.generate(args.agent_id or "unnamed")
    try:
        signer.save_private_key(args.out)
    except FileExistsError:
        print(f"error: {args.out} exists; not overwriting a key", file=sys.stderr)
        return 1
    print(
        json.dumps({"public_key": signer.public_key_b64, "key_id": signer.key_id, "path": args.out})
    )
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    signer = Signer.from_private_key_file(args.agent_id, args.key)
    body: dict[str, Any] = {
        "agent_id": args.agent_id,
        "name": args.name or args.agent_id,
        "public_key": signer.public_key_b64,
    }
    if args.owner:
        body["owner"] = args.owner
    data = _call(args.url, _token(args), "POST", "/api/v1/agents/", body)
    print(json.dumps(data))
    print("the api_key is shown once: store it where the bot reads its secrets", file=sys.stderr)
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    signer = Signer.from_private_key_file(args.agent_id, args.key)
    token = _token(args)
    agent = urllib.parse.quote(args.agent_id, safe="")
    data = _call(
        args.url,
        token,
        "POST",
        f"/api/v1/agents/{agent}/keys/",
        {"public_key": signer.public_key_b64},
    )
    out = {"agent_id": args.agent_id, "key_id": data["key_id"], "revoked": None}
    if args.revoke:
        revoke = urllib.parse.quote(args.revoke, safe="")
        _call(args.url, token, "POST", f"/api/v1/agents/{agent}/keys/{revoke}/revoke/", {})
        out["revoked"] = args.revoke
    print(json.dumps(out))
    return 0


def cmd_outbox(args: argparse.Namespace) -> int:
    if not os.path.exists(args.path):
        print(f"error: {args.path}: no such outbox", file=sys.stderr)
        return 1
    info = inspect(args.path)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"agent:        {info['agent_id']}")
    print(f"pending:      {info['pending']}")
    print(f"delivered:    {info['delivered']}")
    print(f"dead letters: {info['dead_letters']}")
    if info["last_error"]:
        print(f"last error:   {info['last_error']}")
    for dead in info["dead"]:
        print(
            f"  {dead['event_id']} {dead['event_type']} HTTP {dead['http_status']} {dead['code']}"
        )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m compliance_client", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True)

    keygen = sub.add_parser("keygen", help="write a new Ed25519 private key (mode 0600)")
    keygen.add_argument("--out", required=True, help="where to write the key (must not exist)")
    keygen.add_argument("--agent-id", help="only used in messages")
    keygen.set_defaults(fn=cmd_keygen)

    for name, fn, help_text in (
        ("register", cmd_register, "register the agent with its public key"),
        ("rotate-key", cmd_rotate_key, "add a new key to the agent (and revoke an old one)"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
        cmd.add_argument("--token", help="a person's bearer token (or COMPLIANCE_TOKEN)")
        cmd.add_argument("--agent-id", required=True)
        cmd.add_argument("--key", required=True, help="the private key file (from keygen)")
        cmd.set_defaults(fn=fn)
        if name == "register":
            cmd.add_argument("--name", help="display name (default: the agent id)")
            cmd.add_argument("--owner", help="username of the trader who owns the bot")
        else:
            cmd.add_argument("--revoke", metavar="KEY_ID", help="revoke this key afterwards")

    outbox = sub.add_parser("outbox", help="pending and dead-letter counts of an outbox file")
    outbox.add_argument("path")
    outbox.add_argument("--json", action="store_true")
    outbox.set_defaults(fn=cmd_outbox)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except ComplianceError as exc:
        print(
            f"error: the server refused: HTTP {exc.status} {json.dumps(exc.body)}", file=sys.stderr
        )
        return 1
    except (OSError, OutboxError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
