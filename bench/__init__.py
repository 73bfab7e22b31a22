"""Benchmarks, run by `make bench` (`python -m bench`).

Each benchmark is a module in this package that defines

    NAME: str                      # the results file is bench/results/<NAME>.json
    NEEDS_SERVER: bool             # True: it gets a running BenchServer
    def run(ctx: core.Context) -> core.Result

`python -m bench` discovers them, starts one `server.BenchServer` (fresh
PostgreSQL database, migrations, gunicorn) for all that need it, runs each,
prints one table and writes one JSON file per benchmark. Load comes from
client *processes* (`core.run_processes`), so the client side is never the
bottleneck of a 2-core machine running the server and PostgreSQL too, and
every request goes to 127.0.0.1 only.
"""
