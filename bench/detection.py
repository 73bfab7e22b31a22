"""Detection quality: per-detector precision and recall on the labelled scenarios.

Generates the labelled set of tests/surveillance/scenarios.py at scale
(ordinary market making, TWAP and iceberg slicing, momentum bursts, hedging
across two agents of one owner; planted wash trades, spoofs, layering,
rapid-fire bursts, concentration and gate bypasses, every variant of each),
runs the detectors over each case as the cycle does, and reports precision
and recall per detector, for the default (vendor) rules and, without a
target, for the seed's plain rules. Also the detectors' own speed over the
cases' events (no database: the cycle's cost is bench/surveillance.py).

Targets (issue 19): recall 1.0 on every detector, precision >= 0.95, and no
alert on any ordinary market maker."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

NAME = "detection"
SEED_RULES_DETECTORS = ("wash_trading", "layering", "spoofing")
NEEDS_SERVER = False
ORDINARY = 2_000
PLANTED_PER_VARIANT = 12
SEEDS = (19, 20, 21)
COUNTED = ("planted", "detected", "cases_flagged", "false_positive_cases", "alerts")
SEED_RULES = {
    "wash_trading_rule": "opposite_fills",
    "layering_rule": "stack_depth",
    "spoofing_rule": "quick_cancel",
}


def run(ctx: Any) -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    # The detectors read their config through Django's settings; no database is
    # touched. Set up here, whichever benchmarks ran before in this process.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "compliance_site.settings_test")
    import django

    django.setup()
    from tests.surveillance.scenarios import alerts_for, as_table, detector_config, generate, score

    from .core import Result

    result = Result(NAME)
    ordinary = ctx.count(ORDINARY, 500)
    per_variant = ctx.count(PLANTED_PER_VARIANT, 4)
    seeds = SEEDS[: max(1, min(len(SEEDS), ctx.runs))]
    totals: dict[str, dict[str, int]] = {}
    seed_totals: dict[str, dict[str, int]] = {}
    noise: dict[str, Any] = {}
    events = cases_n = maker_alerts = makers = 0
    feed_seconds = 0.0
    config, seed_config = detector_config(), detector_config(SEED_RULES)
    for seed in seeds:
        cases = generate(ordinary=ordinary, planted_per_variant=per_variant, seed=seed)
        cases_n += len(cases)
        events += sum(len(c.events) for c in cases)
        started = time.process_time()
        scores, found_noise = score(cases, config)
        feed_seconds += time.process_time() - started
        for table, into in ((as_table(scores), totals),
                            (as_table(score(cases, seed_config)[0]), seed_totals)):  # fmt: skip
            for name, row in table.items():
                acc = into.setdefault(name, dict.fromkeys(COUNTED, 0))
                for key in acc:
                    acc[key] += row[key]
        noise[str(seed)] = found_noise
        for case in cases:
            if case.behaviour.startswith("market_maker/"):
                makers += 1
                maker_alerts += sum(alerts_for(case, config).values())

    def rates(acc: dict[str, int]) -> tuple[float, float]:
        flagged = acc["cases_flagged"]
        precision = (flagged - acc["false_positive_cases"]) / flagged if flagged else 1.0
        recall = acc["detected"] / acc["planted"] if acc["planted"] else 1.0
        return precision, recall

    for name, acc in totals.items():
        precision, recall = rates(acc)
        result.add(f"{name}: recall ({acc['planted']} planted)", recall, "", "= 1.0",
                   recall == 1.0)  # fmt: skip
        result.add(f"{name}: precision ({acc['cases_flagged']} cases flagged)", precision, "",
                   ">= 0.95", precision >= 0.95)  # fmt: skip
        acc_out = {**acc, "precision": round(precision, 4), "recall": round(recall, 4)}
        result.details.setdefault("default_rules", {})[name] = acc_out
    for name, acc in seed_totals.items():
        precision, recall = rates(acc)
        result.details.setdefault("seed_rules", {})[name] = {
            **acc, "precision": round(precision, 4), "recall": round(recall, 4)}  # fmt: skip
        if name in SEED_RULES_DETECTORS:
            result.add(f"{name}, seed rule: precision", precision, "")
    result.add(f"alerts on {makers} ordinary market makers", maker_alerts, "alerts", "= 0",
               maker_alerts == 0)  # fmt: skip
    result.add("detectors over the cases' events (one core, CPU)", events / feed_seconds,
               "events/s")  # fmt: skip
    result.details.update(
        {
            "cases": cases_n,
            "events": events,
            "seeds": list(seeds),
            "ordinary_per_seed": ordinary,
            "planted_per_variant": per_variant,
            "false_positives_by_behaviour": noise,
        }
    )
    return result
