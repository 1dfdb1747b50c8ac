"""gunicorn's settings for this app, read from the working directory: `gunicorn backoffice.wsgi`.

Sync workers: measured against gthread (2 workers x 4 threads) with `make bench`, they served every
page but the claim POST faster, the queue by 60% (README, "Performance"). Every worker holds one
persistent database connection.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "sync"
timeout = 60
