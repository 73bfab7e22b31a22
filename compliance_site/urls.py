from django.contrib import admin
from django.urls import include, path

from .docs import DocsView, SchemaView
from .health import healthz

urlpatterns = [
    # The bots' hot paths first (orders, then events): Django tries the
    # patterns in order, and no two apps share a path.
    path("api/v1/", include("surveillance.urls")),
    path("api/v1/", include("audit.urls")),
    path("api/v1/", include("accounts.urls")),
    path("api/v1/", include("approvals.urls")),
    path("api/v1/", include("reporting.urls")),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", DocsView.as_view(url_name="schema"), name="docs"),
]

handler400 = "compliance_site.errors.handler400"
handler403 = "compliance_site.errors.handler403"
handler404 = "compliance_site.errors.handler404"
handler500 = "compliance_site.errors.handler500"
