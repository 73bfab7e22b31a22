from django.urls import path

from .apis import (
    LegalHoldReleaseApi,
    LegalHoldsApi,
    ReportDetailApi,
    ReportDownloadApi,
    ReportsApi,
    RetentionManifestApi,
    RetentionPurgeApi,
)
from .apis_subscriptions import SubscriptionDeactivateApi, SubscriptionsApi

app_name = "reporting"

urlpatterns = [
    path("reports/", ReportsApi.as_view(), name="report-list"),
    path("reports/subscriptions/", SubscriptionsApi.as_view(), name="subscription-list"),
    path(
        "reports/subscriptions/<int:subscription_id>/deactivate/",
        SubscriptionDeactivateApi.as_view(),
        name="subscription-deactivate",
    ),
    path("reports/<int:report_id>/", ReportDetailApi.as_view(), name="report-detail"),
    path("reports/<int:report_id>/download/", ReportDownloadApi.as_view(), name="report-download"),
    path("retention/manifest/", RetentionManifestApi.as_view(), name="retention-manifest"),
    path("retention/purge/", RetentionPurgeApi.as_view(), name="retention-purge"),
    path("legal-holds/", LegalHoldsApi.as_view(), name="legalhold-list"),
    path(
        "legal-holds/<int:hold_id>/release/",
        LegalHoldReleaseApi.as_view(),
        name="legalhold-release",
    ),
]
