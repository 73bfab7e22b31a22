"""The five role groups. Their permissions are set by accounts.roles.sync_role_groups
after every migrate (post_migrate), once every app's permissions exist."""

from django.db import migrations

ROLES = ["viewer", "trader", "risk_manager", "compliance_officer", "admin"]


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
