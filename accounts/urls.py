from django.urls import path

from .apis import TokenObtainApi

app_name = "accounts"

urlpatterns = [path("auth/token/", TokenObtainApi.as_view(), name="token-obtain")]
