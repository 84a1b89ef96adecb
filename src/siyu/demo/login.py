"""The demo's console login: user ``admin``, a password generated once and kept in the var dir."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from siyu.core.env import var_dir
from siyu.org.models import Group, Role, Staff

USERNAME = "admin"
CONSOLE_URL = "http://127.0.0.1:8000/console/"


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    path: Path


def login_file() -> Path:
    return var_dir() / "demo_login.txt"


def demo_password() -> str:
    """The password kept in ``demo_login.txt``, generated (and saved) the first time."""
    path = login_file()
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            key, _sep, value = line.partition(":")
            if key.strip() == "password" and value.strip():
                return value.strip()
    password = secrets.token_urlsafe(12)
    path.write_text(f"url: {CONSOLE_URL}\nusername: {USERNAME}\npassword: {password}\n", encoding="utf-8")
    path.chmod(0o600)
    return password


@transaction.atomic
def ensure_login(*, reset: bool = True) -> Login:
    """Create the ``admin`` superuser (or, with ``reset``, bring it back to the demo password)
    and link it to an HQ-admin staff row."""
    password = demo_password()
    user_model = get_user_model()
    user = user_model.objects.filter(username=USERNAME).first()
    if user is None:
        user = user_model.objects.create_superuser(username=USERNAME, email="", password=password)
    elif reset:
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
    if not Staff.objects.filter(user=user).exists():
        staff = Staff.objects.filter(role=Role.HQ_ADMIN, user__isnull=True).order_by("id").first()
        group = Group.objects.order_by("id").first()
        if staff is not None:
            staff.user = user
            staff.save(update_fields=["user"])
        elif group is not None:
            Staff.objects.create(group=group, user=user, code=USERNAME, name=USERNAME, role=Role.HQ_ADMIN)
    return Login(USERNAME, password, login_file())
