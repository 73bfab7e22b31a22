"""Test settings: the environment-driven settings with test defaults.

DATABASE_URL / CELERY_BROKER_URL from the environment still apply (CI points
them at PostgreSQL and Redis)."""

import os
import tempfile

os.environ.setdefault("COMPLIANCE_TESTING", "1")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.setdefault("COMPLIANCE_VAR_DIR", tempfile.mkdtemp(prefix="compliance-test-"))

from .settings import *  # noqa: F403

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 (WhiteNoise warns when it is missing)
