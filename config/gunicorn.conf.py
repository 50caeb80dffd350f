"""gunicorn settings for `make run` and production; override with GUNICORN_* below."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", min(4, multiprocessing.cpu_count() * 2)))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# Load the app once in the master so workers share the read-only pages of code and data.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") == "1"
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
