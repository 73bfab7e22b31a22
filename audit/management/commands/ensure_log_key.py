"""manage.py ensure_log_key: create the log signing key file (0600) if none is configured."""

from django.core.management.base import BaseCommand

from audit.log_key import ensure_key_file, key_name, public_key_raw


class Command(BaseCommand):
    help = "Create the log's Ed25519 signing key if it is missing."

    def handle(self, *args, **options):
        import base64

        path, created = ensure_key_file()
        verb = "Created" if created else "Using"
        self.stdout.write(f"{verb} log signing key ({path if created else 'configured'}).")
        self.stdout.write(f"Log key {key_name()}: {base64.b64encode(public_key_raw()).decode()}")
