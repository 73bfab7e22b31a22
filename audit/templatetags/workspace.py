"""Template filters for the workspace pages: the helpers of audit.admin_display."""

from __future__ import annotations

from typing import Any

from django import template

from audit import admin_display

register = template.Library()


@register.filter
def when_us(value: int | None) -> Any:
    return admin_display.when_us(value)


@register.filter
def when(value: Any) -> Any:
    return admin_display.when(value)


@register.filter
def dec(value: Any) -> str:
    try:
        return admin_display.decimal_text(value)
    except (ArithmeticError, ValueError, TypeError):
        return str(value)


@register.filter
def json_dl(value: Any) -> Any:
    return admin_display.json_list(value)
