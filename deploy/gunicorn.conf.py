"""gunicorn serving the pages through Django's WSGI handler: `gunicorn -c deploy/gunicorn.conf.py`.

Processes × threads come from the environment. Python runs one thread at a time per process, so
capacity comes from processes (about one per core); a few threads per process keep a page that
waits on another service (Stripe, Janus) from holding up the others.
"""

import os

wsgi_app = "spaces_project.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
# A request that takes longer is cut off and its worker restarted (Stripe calls give up sooner).
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
accesslog = None
errorlog = "-"
