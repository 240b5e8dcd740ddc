"""Storage: the ``Datastore`` protocol, the WAL, the writer stage and the backends.

``kairos.storage`` knows nothing of HTTP; it receives validated columnar batches.
"""

from kairos.storage.protocol import Datastore, SeriesData, SeriesInfo

__all__ = ["Datastore", "SeriesData", "SeriesInfo"]
