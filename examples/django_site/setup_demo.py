#!/usr/bin/env python
"""Prepare the example site: apply migrations and create the demo superuser admin/admin.

Safe to run again: migrations already applied are skipped, and an existing ``admin``
user is left as it is.  The database is ``$DJANGO_SITE_DB`` (default: db.sqlite3 next to
this script).  ``--collectstatic`` also gathers static files into ``$DJANGO_SITE_STATIC_ROOT``.
"""

import argparse
import os
import sys
from pathlib import Path

SITE_DIR = Path(__file__).resolve().parent
DEMO_USERNAME = DEMO_PASSWORD = "admin"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collectstatic", action="store_true",
                        help="also run collectstatic into STATIC_ROOT")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(SITE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    verbosity = 0 if args.quiet else 1
    call_command("migrate", interactive=False, verbosity=verbosity)
    if args.collectstatic:
        call_command("collectstatic", interactive=False, verbosity=verbosity)

    from django.contrib.auth import get_user_model

    User = get_user_model()
    if User.objects.filter(username=DEMO_USERNAME).exists():
        message = f"superuser {DEMO_USERNAME!r} already exists"
    else:
        User.objects.create_superuser(DEMO_USERNAME, "admin@example.com", DEMO_PASSWORD)
        message = f"created superuser {DEMO_USERNAME!r} (password {DEMO_PASSWORD!r})"
    if not args.quiet:
        print(f"{message}; database {settings.DATABASES['default']['NAME']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
