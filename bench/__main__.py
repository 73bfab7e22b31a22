"""python -m bench [NAME ...] [options]: run the benchmarks, print one table,
write bench/results/<NAME>.json. Exit status 1 if a benchmark failed to run
(and, with --strict, if a target was missed)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import pkgutil
import signal
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

if __package__ in (None, ""):  # run as a file: bench/run.py or python bench/__main__.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench.core import Context, Result, render_table, write_result
from bench.server import BenchServer, ServerConfig

_NOT_BENCHMARKS = {"core", "server", "run", "profile_ingest", "profile_gate", "__main__"}


def discover() -> dict[str, ModuleType]:
    """Every module of this package that defines NAME and run()."""
    found: dict[str, ModuleType] = {}
    package_dir = Path(__file__).resolve().parent
    for info in sorted(pkgutil.iter_modules([str(package_dir)]), key=lambda i: i.name):
        if info.name in _NOT_BENCHMARKS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if hasattr(module, "NAME") and callable(getattr(module, "run", None)):
            found[module.NAME] = module
    return found


def parse_args(argv: list[str] | None, names: list[str]) -> argparse.Namespace:
    defaults = ServerConfig()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all of {', '.join(names)})",
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="timed runs per figure; the median is reported (3)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a quarter of the requests, one run: a smoke test"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--workers",
        type=int,
        default=defaults.workers,
        help=f"gunicorn workers ({defaults.workers})",
    )
    parser.add_argument(
        "--worker-class", default=defaults.worker_class, choices=["sync", "gthread"]
    )
    parser.add_argument(
        "--threads", type=int, default=defaults.threads, help="threads per gthread worker"
    )
    parser.add_argument(
        "--db-name", default=defaults.db_name, help="dropped and recreated (must contain 'bench')"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in names]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names)}")
    return args


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM (make killed, CI timeout) unwinds like Ctrl-C, so gunicorn is stopped.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    modules = discover()
    args = parse_args(argv, list(modules))
    if args.list:
        for name, module in modules.items():
            print(f"{name:12} {(module.__doc__ or '').strip().splitlines()[0]}")
        return 0
    selected = [modules[n] for n in (args.names or modules)]
    signal.signal(signal.SIGTERM, _terminate)

    config = ServerConfig(
        db_name=args.db_name,
        workers=args.workers,
        worker_class=args.worker_class,
        threads=args.threads,
    )
    scale, runs = (0.25, 1) if args.quick else (1.0, args.runs)
    results: list[Result] = []
    needs_server = any(getattr(m, "NEEDS_SERVER", False) for m in selected)
    server_error: str | None = None
    with contextlib.ExitStack() as stack:
        server = None
        if needs_server:
            try:
                server = stack.enter_context(BenchServer(config))
                setup = ", ".join(f"{k} {v:.1f}s" for k, v in server.setup_seconds.items())
                print(f"bench: server ready at {server.base_url} ({setup})", file=sys.stderr)
            except Exception:
                server_error = traceback.format_exc()
                print(server_error, file=sys.stderr)
        for module in selected:
            result = Result(module.NAME)
            start = time.monotonic()
            print(f"bench: running {module.NAME}", file=sys.stderr)
            if getattr(module, "NEEDS_SERVER", False) and server is None:
                result.error = server_error or "server did not start"
            else:
                try:
                    result = module.run(Context(server=server, scale=scale, runs=runs))
                except Exception:
                    result.error = traceback.format_exc()
                    print(result.error, file=sys.stderr)
                    if server is not None:
                        print(f"gunicorn log tail:\n{server.log_tail()}", file=sys.stderr)
            result.seconds = time.monotonic() - start
            if server is not None:
                result.details.setdefault(
                    "server",
                    {
                        "gunicorn": " ".join(server.gunicorn_command()[1:]),
                        "database": "postgresql",
                        "conn_max_age": config.conn_max_age,
                    },
                )
            results.append(result)
            path = write_result(result)
            print(f"bench: {module.NAME} done in {result.seconds:.0f}s -> {path}", file=sys.stderr)

    print()
    print(render_table(results))
    failed = any(r.error for r in results)
    missed = not all(r.targets_met for r in results)
    if missed and not failed:
        print(
            "\nsome targets were missed"
            + ("" if args.strict else " (exit 0; --strict makes this fail)")
        )
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
