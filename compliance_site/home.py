"""GET /: the site's front door, where the admin's "View site" link goes.

A small page naming what this deployment serves (the admin, the API docs, the
health check); it reads nothing from the database."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "site/home.html")
