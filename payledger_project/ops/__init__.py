"""Operating PayLedger: what an operator and an orchestrator need to run and watch it.

Wired in ``settings.py`` (INSTALLED_APPS, MIDDLEWARE, LOGGING) and ``urls.py``
(``ops.urls``):

- ``health``: ``/healthz`` (the process answers) and ``/readyz`` (the database
  and the cache answer), with django-health-check's probes.
- ``logs``: structlog configuration; JSON lines on stdout in production.
- ``request_id``: ``X-Request-ID`` on every response and every log line, through
  django-structlog's middleware and signals.
- ``gunicorn``: gunicorn's own access and error logs as the same JSON lines;
  imported by gunicorn's master, so it must not import Django.
"""
