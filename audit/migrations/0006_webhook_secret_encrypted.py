"""Webhook signing secrets are stored encrypted (compliance_site.fields):
the column widens to text and every stored secret is encrypted in place;
backwards, decrypted in place."""

from django.db import migrations

import compliance_site.fields

TABLE = "audit_webhookendpoint"


def _rewrite(schema_editor, change):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, secret FROM {TABLE}")  # noqa: S608 - a constant
        rows = cursor.fetchall()
        for pk, value in rows:
            cursor.execute(f"UPDATE {TABLE} SET secret = %s WHERE id = %s", [change(value), pk])  # noqa: S608


def encrypt_secrets(apps, schema_editor):
    _rewrite(schema_editor, compliance_site.fields.encrypt)


def decrypt_secrets(apps, schema_editor):
    _rewrite(schema_editor, compliance_site.fields.decrypt)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0005_drop_redundant_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="webhookendpoint",
            name="secret",
            field=compliance_site.fields.EncryptedTextField(),
        ),
        migrations.RunPython(encrypt_secrets, decrypt_secrets),
    ]
