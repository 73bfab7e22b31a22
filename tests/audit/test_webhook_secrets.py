"""Webhook signing secrets are stored encrypted (compliance_site.fields): the
column never holds the secret, the keys rotate, a wrong key fails loudly, and
the migration encrypts the secrets stored before it."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection, transaction

from accounts.services import user_create
from audit.models import WebhookDelivery, WebhookEndpoint
from audit.webhooks.services import (
    new_secret,
    sign,
    webhook_endpoint_list_for_user,
    webhook_notify,
)
from compliance_site.fields import UnreadableSecret

pytestmark = pytest.mark.django_db

KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def _stored(endpoint_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM audit_webhookendpoint WHERE id = %s", [endpoint_id])
        return cursor.fetchone()[0]


def _endpoint(secret: str) -> WebhookEndpoint:
    officer = user_create(username="officer-secrets", role="compliance_officer", password=None)
    return WebhookEndpoint.objects.create(
        url="https://receiver.example/hook", event_types=["*"], secret=secret, created_by=officer
    )


def test_the_column_holds_a_token_and_the_instance_the_secret(settings):
    settings.COMPLIANCE_ENCRYPTION_KEYS = [KEY_A]
    secret = new_secret()
    endpoint = _endpoint(secret)
    stored = _stored(endpoint.pk)
    assert secret.removeprefix("whsec_") not in stored
    assert Fernet(KEY_A).decrypt(stored.encode()).decode() == secret
    again = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert again.secret == secret
    assert sign(again.secret, "msg_1", 1, "{}") == sign(secret, "msg_1", 1, "{}")


def test_without_keys_the_secret_is_still_encrypted_with_one_derived_from_secret_key(settings):
    settings.COMPLIANCE_ENCRYPTION_KEYS = []
    secret = new_secret()
    endpoint = _endpoint(secret)
    assert secret.removeprefix("whsec_") not in _stored(endpoint.pk)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == secret
    settings.SECRET_KEY = "another-secret-key-" + "y" * 40
    with pytest.raises(UnreadableSecret, match="DJANGO_SECRET_KEY"):
        WebhookEndpoint.objects.get(pk=endpoint.pk)


def test_keys_rotate_old_tokens_read_until_rewritten_under_the_new_key(settings):
    settings.COMPLIANCE_ENCRYPTION_KEYS = [KEY_A]
    secret = new_secret()
    endpoint = _endpoint(secret)
    old_token = _stored(endpoint.pk)

    settings.COMPLIANCE_ENCRYPTION_KEYS = [KEY_B, KEY_A]  # the new key first, the old kept
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == secret
    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert _stored(endpoint.pk) != old_token

    settings.COMPLIANCE_ENCRYPTION_KEYS = [KEY_B]  # the old key dropped
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == secret
    settings.COMPLIANCE_ENCRYPTION_KEYS = [KEY_A]
    with pytest.raises(UnreadableSecret) as caught:
        WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert secret not in str(caught.value)


def test_a_key_that_is_not_a_fernet_key_is_a_configuration_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.COMPLIANCE_ENCRYPTION_KEYS = ["not-a-key"]
    with pytest.raises(ImproperlyConfigured, match="Fernet"), transaction.atomic():
        _endpoint(new_secret())
    assert not WebhookEndpoint.objects.exists()


def test_the_migration_encrypts_secrets_stored_in_the_clear_and_back(settings):
    settings.COMPLIANCE_ENCRYPTION_KEYS = [KEY_A]
    migration = importlib.import_module("audit.migrations.0006_webhook_secret_encrypted")
    secret = new_secret()
    endpoint = _endpoint(secret)
    with connection.cursor() as cursor:  # as stored before the migration
        cursor.execute("UPDATE audit_webhookendpoint SET secret = %s", [secret])
    editor = SimpleNamespace(connection=connection)

    migration.encrypt_secrets(None, editor)
    assert secret.removeprefix("whsec_") not in _stored(endpoint.pk)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == secret

    migration.decrypt_secrets(None, editor)
    assert _stored(endpoint.pk) == secret


def test_a_key_that_no_longer_opens_a_secret_fails_deliveries_not_the_changes(settings):
    settings.COMPLIANCE_ENCRYPTION_KEYS = [KEY_A]
    endpoint = _endpoint(new_secret())
    settings.COMPLIANCE_ENCRYPTION_KEYS = [KEY_B]  # misconfigured: KEY_A dropped too early
    # the change that notifies still commits its outbox row, and the receivers still list
    with transaction.atomic():
        message = webhook_notify("SURVEILLANCE_ALERT", {"alert": 1})
    assert message is not None
    assert WebhookDelivery.objects.filter(endpoint=endpoint, message=message).exists()
    listed = list(webhook_endpoint_list_for_user(user=endpoint.created_by))
    assert [e.pk for e in listed] == [endpoint.pk]
    with pytest.raises(UnreadableSecret):  # signing is where it fails
        listed[0].secret  # noqa: B018
