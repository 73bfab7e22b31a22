"""manage.py run_surveillance: run one surveillance cycle now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from surveillance.services.cycle import MAX_RECORDS_PER_RUN, surveillance_cycle


class Command(BaseCommand):
    help = "Feed the records after the surveillance cursor to the detectors and store new alerts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-records",
            type=int,
            default=MAX_RECORDS_PER_RUN,
            help=f"stop after this many records (default {MAX_RECORDS_PER_RUN})",
        )
        parser.add_argument(
            "--all", action="store_true", help="repeat until the cursor reaches the end of the log"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        total_records = total_alerts = 0
        while True:
            result = surveillance_cycle(max_records=options["max_records"])
            if result.skipped:
                self.stdout.write(f"skipped: {result.skipped}")
                return
            total_records += result.processed
            total_alerts += len(result.alerts)
            if not options["all"] or result.processed == 0:
                break
        self.stdout.write(
            f"processed {total_records} records, {total_alerts} new alerts; "
            f"cursor at seq {result.cursor}"
        )
