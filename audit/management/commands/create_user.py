"""manage.py create_user NAME --role ROLE [--noinput] [--email E] [--reason R]

Password from DJANGO_USER_PASSWORD; prompted (twice) without --noinput. In
audit, not accounts: the creation is recorded (USER_ROLE_CHANGED), with the
command line as its actor."""

import getpass
import os

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import ROLE_ORDER, User
from audit.services import Actor
from audit.services.users import user_create
from compliance_site.exceptions import ServiceError


class Command(BaseCommand):
    help = "Create a user with one of the five roles."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLE_ORDER)
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--reason", default="created from the command line", help="recorded with the change"
        )
        parser.add_argument("--noinput", "--no-input", action="store_true", dest="noinput")

    def handle(self, *args, **options):
        password = os.environ.get("DJANGO_USER_PASSWORD")
        if not password and options["noinput"]:
            raise CommandError("Set DJANGO_USER_PASSWORD when using --noinput.")
        if not password:
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("Passwords do not match.")
        # Every way in, --noinput included: Django's validators (length, common
        # passwords, all digits, too like the name).
        try:
            validate_password(
                password, user=User(username=options["username"], email=options["email"])
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        try:
            user = user_create(
                username=options["username"],
                role=options["role"],
                password=password,
                email=options["email"],
                reason=options["reason"],
                acting_user=None,
                actor=Actor.system("manage.py create_user"),
            )
        except ServiceError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(f"Created {user.username} with role {options['role']}.")
        )
