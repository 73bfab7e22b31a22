"""The admin's user pages. Here, not in accounts, because every change goes
through audit.services.users and becomes a USER_ROLE_CHANGED record: the
stock page edited groups, permissions and the superuser flag with no rule and
no trace. A form shows a refusal (own account, superuser only, no reason)
before anything is saved; the service checks again under its lock."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserCreationForm
from django.db import transaction
from django.http import HttpRequest

from accounts.models import Role, User
from accounts.permissions import request_person
from accounts.roles import user_role
from compliance_site.exceptions import ServiceError

from .services.users import (
    UserChange,
    user_active_set,
    user_change_refusal,
    user_create,
    user_flags_set,
    user_role_set,
)

REASON_HELP = "Recorded in the log with the change (USER_ROLE_CHANGED)."


def _held_role(user: User) -> str:
    names = set(user.groups.values_list("name", flat=True))
    held = [r for r in Role.values if r in names]
    return held[-1] if held else Role.VIEWER


class _Refusal:
    """Turns the service's refusal into a form error."""

    acting_user: Any = None

    def refuse(self, target: User | None, change: UserChange) -> None:
        try:
            user_change_refusal(acting_user=self.acting_user, target=target, change=change)
        except ServiceError as exc:
            raise forms.ValidationError(exc.detail, code=exc.code) from exc


class UserAddForm(_Refusal, UserCreationForm):
    role = forms.ChoiceField(choices=Role.choices)
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("role"):
            self.refuse(None, UserChange(role=cleaned["role"]))
        return cleaned


class UserRoleForm(_Refusal, forms.ModelForm):
    role = forms.ChoiceField(choices=Role.choices)
    reason = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), help_text=REASON_HELP
    )

    class Meta:
        model = User
        fields = ["is_active", "is_superuser", "is_staff"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["role"].initial = _held_role(self.instance)

    def change(self) -> UserChange:
        changed, data = self.changed_data, self.cleaned_data
        return UserChange(
            role=data["role"] if "role" in changed else None,
            is_active=data["is_active"] if "is_active" in changed else None,
            is_superuser=data["is_superuser"] if "is_superuser" in changed else None,
            is_staff=data["is_staff"] if "is_staff" in changed else None,
        )

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if self.errors:
            return cleaned
        change = self.change()
        if change == UserChange():
            raise forms.ValidationError("Nothing to change.", code="unchanged")
        self.refuse(self.instance, change)
        return cleaned


class UserAdmin(BaseUserAdmin):
    """Users are created, given a role, deactivated and flagged only through
    the services; never deleted (records name them)."""

    form = UserRoleForm
    add_form = UserAddForm
    list_display = ["username", "email", "role", "is_active", "is_superuser", "last_login"]
    list_filter = ["is_active", "is_superuser", "groups"]
    readonly_fields = ["username", "email", "last_login", "date_joined"]
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "email", "password1", "password2", "role", "reason"),
            },
        ),
    )

    @admin.display(description="Role")
    def role(self, obj: User) -> str:
        return user_role(obj) or "-"

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return self.add_fieldsets
        fieldsets: list[Any] = [
            (None, {"fields": ("username", "email", "last_login", "date_joined")}),
            ("Role", {"fields": ("role", "is_active")}),
        ]
        if request.user.is_superuser:
            fieldsets.append(("Superuser only", {"fields": ("is_superuser", "is_staff")}))
        fieldsets.append(("Why", {"fields": ("reason",)}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[User]]:
        form = super().get_form(request, obj, change=change, **kwargs)
        if issubclass(form, _Refusal):  # always: built from form or add_form
            form.acting_user = request_person(request)
        return form

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A superuser's account (password included) is a superuser's to change.
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @transaction.atomic
    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            created = user_create(
                username=data["username"],
                email=data.get("email") or "",
                role=data["role"],
                password=data["password1"],
                reason=data["reason"],
                acting_user=request.user,
            )
            obj.pk = created.pk
            return
        # `obj` holds the form's values, unsaved: each service reads the stored row.
        target = User.objects.get(pk=obj.pk)
        wanted: UserChange = form.change()
        if wanted.touches_flags:
            target = user_flags_set(
                user=target,
                is_superuser=wanted.is_superuser,
                is_staff=wanted.is_staff,
                reason=data["reason"],
                acting_user=request.user,
            )
        if wanted.role is not None:
            target = user_role_set(
                user=target, role=wanted.role, reason=data["reason"], acting_user=request.user
            )
        if wanted.is_active is not None:
            user_active_set(
                user=target,
                active=wanted.is_active,
                reason=data["reason"],
                acting_user=request.user,
            )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Nothing related is edited here (groups are the role, set by the service)."""
