"""Write the development settings file `make run` uses: `var/dev.env`.

`make run` calls this before anything else. The file holds `DJANGO_DEBUG=1`
and a random `DJANGO_SECRET_KEY`, mode 0600, and is written once: the secret
stays the same from run to run (the development encryption key for stored
webhook secrets derives from it). compliance_site/settings.py reads it when
the environment names no secret key, so `manage.py` works in a second shell
with nothing exported. A deployment sets its own variables and has no such file.

    python -m compliance_site.devenv [VAR_DIR]
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def write_dev_env(var_dir: Path) -> tuple[Path, bool]:
    """Create `var_dir/dev.env` unless it exists; return its path and whether
    it was created now."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / "dev.env"
    if path.exists():
        return path, False
    text = (
        "# Written by `make run` (python -m compliance_site.devenv) for development only.\n"
        "# Read by manage.py, gunicorn and Celery when DJANGO_SECRET_KEY is not set.\n"
        "DJANGO_DEBUG=1\n"
        f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return path, True


def main(argv: list[str]) -> int:
    default = os.environ.get("COMPLIANCE_VAR_DIR") or str(BASE_DIR / "var")
    path, created = write_dev_env(Path(argv[0] if argv else default))
    print(f"{'wrote' if created else 'kept'} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
