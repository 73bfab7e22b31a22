"""manage.py retention_purge: run the retention purge now (as the beat task does)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from audit.services import Actor
from reporting.services.retention import retention_purge


class Command(BaseCommand):
    help = (
        "Clear the payload of records past retention and outside every legal hold; "
        "records DATA_PURGED. Running it again purges nothing more."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        summary = retention_purge(acting=Actor.system("retention-command"))
        self.stdout.write(json.dumps(summary.as_dict()))
