"""manage.py verify_audit: exit 0 when the log is intact, 1 naming the first bad seq."""

import sys

from django.core.management.base import BaseCommand

from audit.services.log import Actor
from audit.services.verify import verify_and_record, verify_log


class Command(BaseCommand):
    help = "Verify the whole audit log (leaves, chain, head)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--record",
            action="store_true",
            help="Also record the result in the log (AUDIT_VERIFIED).",
        )

    def handle(self, *args, **options):
        if options["record"]:
            result = verify_and_record(actor=Actor.system("verify_audit"))
        else:
            result = verify_log()
        if result.ok:
            self.stdout.write(self.style.SUCCESS(f"OK: {result.detail}"))
            return
        self.stderr.write(
            f"FAILED at seq {result.first_bad_seq}: {result.detail} "
            f"({result.checked} records verified before it)"
        )
        sys.exit(1)
