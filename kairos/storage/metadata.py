"""KairosDB's metadata key store (``ServiceKeyStore``): ``service / service_key / key -> value``.

Two implementations behind the :class:`MetadataStore` protocol, chosen by :func:`open_metadata`
and imported only for their own datastore (an embedded worker never imports the Cassandra
package)::

    storage/metadata.py             MetadataStore, open_metadata (this module)
    storage/embedded/metadata.py    EmbeddedMetadata: one SQLite database per data directory,
                                    <data_dir>/metadata/metadata.sqlite, shared by every worker
    storage/cassandra/metadata.py   CassandraMetadata: KairosDB's own CQL on ``service_index``
                                    (spec §6.10) with the datastore's session, so Java
                                    KairosDB and Kairos share one keyspace's metadata

Result shapes mirror KairosDB (decisions, after ``CassandraDatastore``/``H2Datastore``):

* ``list_service_keys`` returns one entry per stored ``(service_key, key)`` row, duplicates
  included, as both Java stores do.  Cassandra returns them in partition-token order, plus one
  entry for a service key whose keys were all deleted (the static ``mtime`` row that
  ``deleteKey`` writes survives); Kairos passes that through unchanged.  The embedded store
  follows H2 (KairosDB's embedded store): rows ordered by key (ties by service key), and a
  service key with no keys left is gone.
* ``list_keys`` is ascending by code point (Cassandra's UTF-8 byte order); with a prefix ``p``
  it is the half-open range ``[p, p + U+FFFF)`` on both stores, exactly Cassandra's query, so a
  key ``p`` followed by a character above U+FFFF (an emoji, say) is *not* listed.  An empty
  prefix means no prefix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from kairos.config import Config

__all__ = ["MetadataStore", "open_metadata"]


class MetadataStore(Protocol):
    def set_value(self, service: str, service_key: str, key: str, value: str) -> None: ...

    def get_value(self, service: str, service_key: str, key: str) -> str | None: ...

    def list_service_keys(self, service: str) -> list[str]: ...

    def list_keys(
        self, service: str, service_key: str, starts_with: str | None = None
    ) -> list[str]: ...

    def delete_key(self, service: str, service_key: str, key: str) -> None: ...

    def close(self) -> None: ...


def open_metadata(config: Config, store: object) -> MetadataStore:
    """The metadata store of ``config.datastore``; Cassandra reuses ``store``'s keyspace."""
    if config.datastore == "cassandra":
        from kairos.storage.cassandra.metadata import CassandraMetadata

        return CassandraMetadata(store.db)  # type: ignore[attr-defined]
    from kairos.storage.embedded.metadata import EmbeddedMetadata

    return EmbeddedMetadata(config.data_dir, config.metadata_busy_timeout_ms)
