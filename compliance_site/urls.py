from django.contrib import admin
from django.urls import include, path

from .docs import DocsView, RedocView, SchemaView
from .health import healthz
from .home import home
from .metrics_view import metrics

urlpatterns = [
    # The bots' hot paths first (orders, then events): Django tries the
    # patterns in order, and no two apps share a path.
    path("api/v1/", include("surveillance.urls")),
    path("api/v1/", include("audit.urls")),
    path("api/v1/", include("accounts.urls")),
    path("api/v1/", include("approvals.urls")),
    path("api/v1/", include("reporting.urls")),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    # the split view serves its start-up script as a file: no inline script (CSP)
    path("api/docs/", DocsView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", RedocView.as_view(url_name="schema"), name="redoc"),
    path("", home, name="home"),
]

handler400 = "compliance_site.errors.handler400"
handler403 = "compliance_site.errors.handler403"
handler404 = "compliance_site.errors.handler404"
handler500 = "compliance_site.errors.handler500"
