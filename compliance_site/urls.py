from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .health import healthz
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
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]
