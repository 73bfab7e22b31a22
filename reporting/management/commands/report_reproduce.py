"""manage.py report_reproduce ID: regenerate a provisional report from its
pinned seq range and say whether it matches the stored file byte for byte."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reporting.models import Report
from reporting.services.provisional import report_reproduce


class Command(BaseCommand):
    help = "Regenerate a provisional report from its seq range and compare it byte for byte."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("report_id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = report_reproduce(report_id=options["report_id"])
        except (Report.DoesNotExist, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if not result.identical:
            raise CommandError(
                f"report {result.report_id} does NOT reproduce: recorded {result.sha256}, "
                f"regenerated {result.regenerated_sha256}"
            )
        self.stdout.write(f"report {result.report_id} reproduces byte for byte: {result.sha256}")
