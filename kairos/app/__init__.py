"""The Sanic application: ``create_app(config)`` and the process layout.

::

    main process ── Sanic worker manager
       ├── HTTP worker x N   (blueprints below; each appends to its own WAL file)
       └── Writer            (kairos.storage.writer.run_writer: WAL -> datastore)

Blueprints, one per resource under ``/api/v1``: datapoints (ingest and query), metricnames,
version, health (also ``/health``, ``/health/ready``, ``/health/live``).
"""

from kairos.app.factory import create_app, serve

__all__ = ["create_app", "serve"]
