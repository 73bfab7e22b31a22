from django.urls import path

from .apis import ApprovalApproveApi, ApprovalDenyApi, ApprovalDetailApi, ApprovalListApi

app_name = "approvals"

urlpatterns = [
    path("approvals/", ApprovalListApi.as_view(), name="approval-list"),
    path("approvals/<int:approval_id>/", ApprovalDetailApi.as_view(), name="approval-detail"),
    path(
        "approvals/<int:approval_id>/approve/",
        ApprovalApproveApi.as_view(),
        name="approval-approve",
    ),
    path("approvals/<int:approval_id>/deny/", ApprovalDenyApi.as_view(), name="approval-deny"),
]
