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
# Access-log lines (with --access-logfile or `accesslog`) name the path, never the query string: a
# search in a URL would put a patient's name in the log (backoffice/server_log.py).
logger_class = "backoffice.server_log.GunicornLogger"
