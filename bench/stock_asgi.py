"""Django's own ASGI handler serving the same project, for comparison in
bench/http_pages.py --compare-stock (the site itself is served by spaces_project/handler.py)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spaces_project.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
