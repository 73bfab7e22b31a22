from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.models import Role
        from accounts.roles import grant

        from .models.webhooks import notify_checkpoint
        from .services.checkpoints import register_checkpoint_hook

        register_checkpoint_hook(notify_checkpoint)

        grant(Role.VIEWER, ["audit.view_record", "audit.view_checkpoint", "audit.view_eventtype"])
        grant(Role.COMPLIANCE_OFFICER, ["audit.add_eventtype"])
