from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.models import Role
        from accounts.roles import grant

        # Auditors read the queue (admin changelist is gated on the view
        # permission); deciding is accounts.decide_approvals (compliance officer+).
        grant(Role.VIEWER, ["approvals.view_approvalrequest"])
