"""manage.py export_audit --out FILE [--from-seq N] [--to-seq M]: write an evidence bundle."""

from django.core.management.base import BaseCommand, CommandError

from audit.services.export import ExportError, write_bundle


class Command(BaseCommand):
    help = (
        "Write an evidence bundle (zip) that `python -m compliance_client.verify` checks offline."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True)
        parser.add_argument("--from-seq", type=int, default=None)
        parser.add_argument("--to-seq", type=int, default=None)

    def handle(self, *args, **options):
        try:
            with open(options["out"], "wb") as out:
                info = write_bundle(out, from_seq=options["from_seq"], to_seq=options["to_seq"])
        except ExportError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {options['out']}: {info.records} records, {info.checkpoints} checkpoints. "
                f"Verify with: python -m compliance_client.verify {options['out']}"
            )
        )
