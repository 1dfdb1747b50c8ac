"""gunicorn's settings for this app, read from the working directory: `gunicorn backoffice.wsgi`.

Each page waits on Postgres several times, and a page that shows patients commits its access-log
row, which waits for the WAL to reach the disk. With plain sync workers the CPU sits idle through
those waits; gthread workers run another request meanwhile. Every thread holds its own persistent
database connection, so workers x threads is the connection count Postgres must allow.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 60
