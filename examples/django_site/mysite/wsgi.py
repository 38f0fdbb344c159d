"""The WSGI application of the example site.

From the repository root::

    python -m wsgiloop examples.django_site.mysite.wsgi:application

This module puts ``examples/django_site`` on ``sys.path`` so that ``mysite`` and
``notes`` import under their own names, whichever way this module was imported.
"""

import os
import sys
from pathlib import Path

SITE_DIR = str(Path(__file__).resolve().parent.parent)
if SITE_DIR not in sys.path:
    sys.path.insert(0, SITE_DIR)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
