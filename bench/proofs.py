"""Transparency at scale: proofs over HTTP at 10k and 1M records, offline
verification of the evidence bundle, and proof verification.

The log is grown through the service's bulk path (`audit.services.append` of
records whose bot envelopes are really signed with Ed25519, 5,000 per
transaction), never by SQL that skips the hashing. At 10k records and again at
1M: inclusion and consistency proofs for random positions against the whole
tree, one client, p50/p99. Then `manage.py export_audit` writes the bundle and
`python -m compliance_client.verify` checks it with and without the bot
signatures (both cores). Proof verification: the returned proofs checked
with compliance_client.merkle, per second on one core.

Targets (issue 3): proof p99 < 10 ms at 1M and within 2x of 10k; hash-only
verification >= 40,000 records/s; full verification of 1M records < 2 min.
Standalone: python -m bench proofs [--quick]
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
from typing import Any

from .core import Context, Result, median, percentile, wait_for_quiet
from .server import REPO, BenchAgent

NAME = "proofs"
NEEDS_SERVER = True

SMALL = 10_000
LARGE = 1_000_000
BATCH = 5_000
PROOF_REQUESTS = 400
TARGET_P99_MS = 10.0
TARGET_FLAT = 2.0
TARGET_HASH_RATE = 40_000
TARGET_FULL_SECONDS = 120.0


# -- child process (Django) -------------------------------------------------


def _sign_chunk(arg: tuple[bytes, str, int, int]) -> list[tuple[bytes, str]]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from compliance_client.jcs import canonicalize

    private, agent_id, start, count = arg
    key = Ed25519PrivateKey.from_private_bytes(private)
    key_id = __import__("hashlib").sha256(key.public_key().public_bytes_raw()).hexdigest()[:16]
    out = []
    now = time.time_ns() // 1000
    for n in range(start, start + count):
        envelope = {
            "agent_id": agent_id,
            "event_id": f"proofs-{n}",
            "event_type": "ORDER_FILLED",
            "occurred_at_us": now,
            "payload": {
                "order_id": f"o-{n}",
                "fill_id": f"f-{n}",
                "quantity": "1",
                "price": "100.5",
            },
        }
        signature = base64.b64encode(key.sign(canonicalize(envelope))).decode()
        source = {"envelope": envelope, "key_id": key_id, "signature": signature}
        out.append((canonicalize(source), f"proofs-{n}"))
    return out


def child_seed(private_b64: str, agent_id: str, target_size: int) -> dict[str, Any]:
    """Grow the log to `target_size` records, then sign a checkpoint."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "compliance_site.settings")
    import django

    django.setup()
    from django.db import transaction

    from audit.models import Log
    from audit.services import Actor, PendingRecord, append, now_us
    from audit.services.checkpoints import checkpoint_create
    from compliance_client.jcs import canonicalize

    private = base64.b64decode(private_b64)
    size = Log.objects.get(name="default").size
    start = time.monotonic()
    added = 0
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        while size < target_size:
            count = min(BATCH * 4, target_size - size)
            parts = [
                (private, agent_id, size + i, min(BATCH, count - i)) for i in range(0, count, BATCH)
            ]
            for signed in pool.imap(_sign_chunk, parts):
                data = canonicalize(
                    {"clock_drift_us": 150, "received_at_us": now_us(), "schema_version": 1}
                )
                pending = [
                    PendingRecord(
                        "ORDER_FILLED",
                        Actor.agent(agent_id),
                        data,
                        source_json=source,
                        agent_id=agent_id,
                        event_id=event_id,
                    )
                    for source, event_id in signed
                ]
                with transaction.atomic():
                    append(pending)
                added += len(pending)
            size = Log.objects.get(name="default").size
    checkpoint = checkpoint_create(force=True)
    return {
        "size": checkpoint.tree_size,
        "added": added,
        "seconds": round(time.monotonic() - start, 1),
    }


# -- bench process ----------------------------------------------------------


def _child(server: Any, *args: str, timeout: float = 3600) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.proofs", "--child", *args],
        cwd=REPO, env={**server.env, "LOG_LEVEL": "ERROR"}, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"bench.proofs {args[0]} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _proofs(server: Any, token: str, size: int, requests: int) -> dict[str, Any]:
    from compliance_client import merkle

    client = server.client(token)
    rng = random.Random(size)
    status, body = client.request("GET", "/api/v1/log/checkpoints/latest/")
    root = bytes.fromhex(json.loads(body)["root_hash"])
    inclusion, consistency, fetched = [], [], []
    for _ in range(requests):
        seq = rng.randrange(size)
        t0 = time.monotonic()
        status, body = client.request(
            "GET", f"/api/v1/log/proofs/inclusion/?seq={seq}&tree_size={size}"
        )
        inclusion.append(time.monotonic() - t0)
        if status != 200:
            raise RuntimeError(f"inclusion proof failed: {status} {body[:200]!r}")
        fetched.append(json.loads(body))
        first = rng.randrange(1, size)
        t0 = time.monotonic()
        status, body = client.request(
            "GET", f"/api/v1/log/proofs/consistency/?first={first}&second={size}"
        )
        consistency.append(time.monotonic() - t0)
        if status != 200:
            raise RuntimeError(f"consistency proof failed: {status} {body[:200]!r}")
    client.close()
    # Proof verification on one core: every fetched inclusion proof, checked.
    proofs = [
        (bytes.fromhex(p["leaf_hash"]), p["seq"], [bytes.fromhex(h) for h in p["hashes"]])
        for p in fetched
    ]
    t0 = time.perf_counter()
    rounds = 0
    while time.perf_counter() - t0 < 1.0:
        for leaf, seq, path in proofs:
            if not merkle.verify_inclusion(leaf, seq, size, path, root):
                raise RuntimeError(f"inclusion proof for seq {seq} does not verify")
        rounds += 1
    verify_rate = rounds * len(proofs) / (time.perf_counter() - t0)
    return {
        "size": size,
        "inclusion_p50_ms": round(percentile(inclusion, 50) * 1000, 2),
        "inclusion_p99_ms": round(percentile(inclusion, 99) * 1000, 2),
        "consistency_p50_ms": round(percentile(consistency, 50) * 1000, 2),
        "consistency_p99_ms": round(percentile(consistency, 99) * 1000, 2),
        "proof_verifications_per_s": round(verify_rate),
    }


def _officer_token(server: Any) -> str:
    password = server.password
    server.manage(
        "shell", "-c",
        "from accounts.models import User\nfrom accounts.services import user_create\n"
        "User.objects.filter(username='bench-auditor').exists() or "
        f"user_create(username='bench-auditor', role='viewer', password={password!r})",
    )  # fmt: skip
    status, body = server.request_json(
        "POST", "/api/v1/auth/token/", {"username": "bench-auditor", "password": password}
    )
    if status != 201:
        raise RuntimeError(f"token failed: {status} {body}")
    return str(body["token"])


def _verify(bundle: str, *flags: str) -> float:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "compliance_client.verify", bundle, *flags],
        cwd=REPO, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(
            f"offline verification failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return time.monotonic() - t0


def run(ctx: Context) -> Result:
    server = ctx.server
    result = Result(NAME)
    server.manage("ensure_log_key")  # checkpoints are signed with the log's own key
    agent: BenchAgent = server.register_agent("bench-proofs")
    private_b64 = base64.b64encode(agent.private_key).decode()
    token = _officer_token(server)
    small, large = ctx.count(SMALL, 1000), ctx.count(LARGE, 20_000)
    requests = ctx.count(PROOF_REQUESTS, 50)

    figures = []
    for target in (small, large):
        seeded = _child(server, "seed", private_b64, agent.agent_id, str(target))
        print(
            f"  log grown to {seeded['size']:,} records "
            f"(+{seeded['added']:,} in {seeded['seconds']}s)"
        )
        wait_for_quiet()
        runs = [_proofs(server, token, seeded["size"], requests) for _ in range(ctx.runs)]
        merged = {k: median([r[k] for r in runs]) for k in runs[0] if k != "size"}
        merged["size"] = seeded["size"]
        figures.append(merged)
        print(f"  proofs at {seeded['size']:,}: {merged}")

    bundle = str(server.var_dir / "bundle.zip")
    t0 = time.monotonic()
    server.manage("export_audit", "--out", bundle, timeout=3600)
    export_s = time.monotonic() - t0
    size = figures[-1]["size"]
    hash_only_s = _verify(bundle, "--no-signatures")
    full_s = _verify(bundle)

    at_small, at_large = figures
    p99 = max(at_large["inclusion_p99_ms"], at_large["consistency_p99_ms"])
    p99_small = max(at_small["inclusion_p99_ms"], at_small["consistency_p99_ms"])
    flat = p99 / p99_small if p99_small else 0
    for f in figures:
        n = f"{f['size']:,}"
        result.add(f"inclusion proof p50 @ {n}", f["inclusion_p50_ms"], "ms")
        target = f"< {TARGET_P99_MS:.0f}"
        ok = f["inclusion_p99_ms"] < TARGET_P99_MS
        result.add(f"inclusion proof p99 @ {n}", f["inclusion_p99_ms"], "ms", target, ok)
        result.add(f"consistency proof p50 @ {n}", f["consistency_p50_ms"], "ms")
        ok = f["consistency_p99_ms"] < TARGET_P99_MS
        result.add(f"consistency proof p99 @ {n}", f["consistency_p99_ms"], "ms", target, ok)
    result.add(
        "proof p99 growth small -> large", flat, "x", f"<= {TARGET_FLAT:.0f}", flat <= TARGET_FLAT
    )
    result.add("proof verification (one core)", at_large["proof_verifications_per_s"], "proofs/s")
    result.add(f"export_audit of {size:,} records", export_s, "s")
    rate = size / hash_only_s
    result.add("offline verify, hash-only", rate, "records/s", f">= {TARGET_HASH_RATE:,}",
               rate >= TARGET_HASH_RATE)  # fmt: skip
    result.add("offline verify, with signatures", size / full_s, "records/s")
    result.add(f"offline verify with signatures, {size:,} records", full_s, "s",
               f"< {TARGET_FULL_SECONDS:.0f}", full_s < TARGET_FULL_SECONDS)  # fmt: skip
    result.details.update({"figures": figures, "bundle_bytes": os.path.getsize(bundle)})
    return result


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"] and argv[1] == "seed":
        print(json.dumps(child_seed(argv[2], argv[3], int(argv[4]))))
        return 0
    print("usage: python -m bench proofs", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
