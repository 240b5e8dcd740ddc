"""Kairos: a KairosDB-compatible time-series database (Sanic + Cython/numpy).

``create_app`` builds the HTTP application (see ``kairos.app``); ``Histogram`` is the histogram
data type.
"""

from kairos.model.histogram import Histogram

__version__ = "0.1.0"

__all__ = ["Histogram", "__version__", "create_app"]


def __getattr__(name: str):
    if name == "create_app":  # imported lazily: it pulls in Sanic
        from kairos.app import create_app

        return create_app
    raise AttributeError(name)
