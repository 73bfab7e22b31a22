from django.contrib.admin.apps import AdminConfig


class WorkspaceAdminConfig(AdminConfig):
    """django.contrib.admin with the workspace's site as `admin.site`."""

    default_site = "reporting.workspace.site.WorkspaceAdminSite"
