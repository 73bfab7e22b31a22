"""manage.py rotate_encryption_keys: re-encrypt every stored secret (webhook
signing secrets) under the first of COMPLIANCE_ENCRYPTION_KEYS.

To rotate: put the new key first and keep the old ones after it, deploy, run
this command, then drop the old keys."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from compliance_site.fields import UnreadableSecret, reencrypt_stored


class Command(BaseCommand):
    help = "Re-encrypt every stored secret under the first of COMPLIANCE_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = reencrypt_stored(progress=self.stdout.write)
        except UnreadableSecret as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{count} secret(s) now under the first key."))
