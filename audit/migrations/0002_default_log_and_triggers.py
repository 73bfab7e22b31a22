from django.db import migrations


def create_default_log(apps, schema_editor):
    Log = apps.get_model("audit", "Log")
    Log.objects.get_or_create(name="default")


def install_triggers(apps, schema_editor):
    from audit import store

    store.triggers_install(schema_editor.connection)


def drop_triggers(apps, schema_editor):
    from audit import store

    store.triggers_drop(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunPython(create_default_log, migrations.RunPython.noop),
        migrations.RunPython(install_triggers, drop_triggers),
    ]
