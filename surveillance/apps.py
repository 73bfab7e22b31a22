from django.apps import AppConfig


class SurveillanceConfig(AppConfig):
    name = "surveillance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.models import Role
        from accounts.roles import grant
        from approvals.registry import register_resolver
        from audit.services import register_projection_hook

        from . import admin_risk  # noqa: F401  (registers the gate's admin pages)
        from .services.projections import OrderApprovalResolver, apply_reported

        register_projection_hook(apply_reported)
        register_resolver("order", OrderApprovalResolver(), replace=True)
        grant(
            Role.VIEWER,
            [
                "surveillance.view_order",
                "surveillance.view_fill",
                "surveillance.view_killswitch",
                "surveillance.view_complianceconfigversion",
                "surveillance.view_agentrisklimit",
                "surveillance.view_marketrisk",
                "surveillance.view_agentmarketrisk",
            ],
        )
        grant(Role.RISK_MANAGER, ["surveillance.add_killswitch", "surveillance.change_killswitch"])
