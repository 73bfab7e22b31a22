from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "reporting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.models import Role
        from accounts.roles import grant

        grant(Role.VIEWER, ["reporting.view_report", "reporting.download_report"])
        grant(Role.COMPLIANCE_OFFICER, ["reporting.add_report", "reporting.view_legalhold"])
        grant(Role.ADMIN, ["reporting.add_legalhold", "reporting.change_legalhold"])
