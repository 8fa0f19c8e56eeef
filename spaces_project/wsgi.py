"""WSGI entry point: gunicorn serves the pages through it in production (deploy/gunicorn.conf.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spaces_project.settings")
application = get_wsgi_application()
