"""Operating PayLedger: what an operator and an orchestrator need to run and watch it.

Wired in ``settings.py`` (INSTALLED_APPS) and ``urls.py`` (``ops.urls``):

- ``health``: ``/healthz`` (the process answers) and ``/readyz`` (the database
  and the cache answer), with django-health-check's probes.
- ``gunicorn``: gunicorn's own access and error logs as JSON lines; imported by
  gunicorn's master, so it must not import Django.
"""
