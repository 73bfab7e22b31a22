from django.urls import path

from .apis import WebhookDeliveriesApi, WebhookEnableApi, WebhookListCreateApi

app_name = "webhooks"

urlpatterns = [
    path("webhooks/", WebhookListCreateApi.as_view(), name="webhook-list"),
    path("webhooks/<int:endpoint_id>/enable/", WebhookEnableApi.as_view(), name="webhook-enable"),
    path(
        "webhooks/<int:endpoint_id>/deliveries/",
        WebhookDeliveriesApi.as_view(),
        name="webhook-deliveries",
    ),
]
