"""manage.py retention_manifest [--json]: what is due for destruction when."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from reporting.services.retention import retention_manifest


class Command(BaseCommand):
    help = "List retention policies, what is due for purging now and later, and active legal holds."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the manifest as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        manifest = retention_manifest()
        if options["json"]:
            self.stdout.write(json.dumps(manifest, indent=2))
            return
        self.stdout.write(f"as of {manifest['as_of']}; retention_days {manifest['retention_days']}")
        for p in manifest["policies"]:
            up = p["upcoming"]
            soon = f"{up['within_30_days']}/{up['within_90_days']}/{up['within_365_days']}"
            self.stdout.write(
                f"{p['policy']:15} min {p['legal_minimum_years'] or '-'}y  "
                f"cutoff {p['cutoff'][:10]}  due now {p['due_now']} (held {p['held']})  "
                f"next {p['next_due_at'] or '-'}  30/90/365d {soon}  purged {p['purged']}  "
                f"[{p['legal_basis']}]"
            )
        for h in manifest["legal_holds"]:
            self.stdout.write(
                f"hold #{h['id']} {h['scope']} covers {h['covers_unpurged']}: {h['reason']}"
            )
