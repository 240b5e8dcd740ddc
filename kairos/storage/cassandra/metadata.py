"""The Cassandra datastore's metadata: KairosDB's ``service_index`` table (spec §6.10).

KairosDB's own CQL, word for word, on the datastore's session, so Java KairosDB and Kairos share
one keyspace's metadata.  Write times are milliseconds (the session's client timestamp
generator), as KairosDB's.  Result shapes are Cassandra's, passed through (see
:mod:`kairos.storage.metadata`): ``list_service_keys`` in partition-token order, including a
service key whose keys were all deleted (its static ``mtime`` row survives).
"""

from __future__ import annotations

import threading

from kairos.model.java import CHAR_MAX
from kairos.storage.cassandra.failures import driver_errors, unavailable
from kairos.storage.cassandra.session import READ, WRITE, Keyspace

__all__ = ["CassandraMetadata"]

# KairosDB's ClusterConnection statements (spec §6.10), word for word.
_CQL = {
    "insert": "INSERT INTO {ks}.service_index (service, service_key, key, value, mtime) "
    "VALUES (?, ?, ?, ?, now())",
    "get": "SELECT value, WRITETIME(value) FROM {ks}.service_index "
    "WHERE service = ? AND service_key = ? AND key = ?",
    "keys": "SELECT key FROM {ks}.service_index WHERE service = ? AND service_key = ? "
    "ORDER BY key ASC",
    "keys_prefix": "SELECT key FROM {ks}.service_index WHERE service = ? AND service_key = ? "
    "AND key >= ? AND key < ?",
    "service_keys": "SELECT service_key FROM {ks}.service_index WHERE service = ? ALLOW FILTERING",
    "delete": "DELETE FROM {ks}.service_index WHERE service = ? AND service_key = ? AND key = ?",
    "touch": "INSERT INTO {ks}.service_index (service, service_key, mtime) VALUES (?, ?, now())",
}


class CassandraMetadata:
    """KairosDB's ``service_index`` table through the datastore's :class:`Keyspace`."""

    def __init__(self, db: Keyspace) -> None:
        self.db = db
        self.keyspace = db.name
        self._prepared: dict[str, object] = {}
        self._lock = threading.Lock()

    def _run(self, name: str, params: tuple, profile: str) -> list:
        # Raises DatastoreUnavailable at once while the keyspace is not connected.
        session = self.db.ready_session()
        try:
            with self._lock:
                stmt = self._prepared.get(name)
                if stmt is None:
                    # Prepared lazily: the writer process creates the table at start-up.
                    stmt = session.prepare(_CQL[name].format(ks=self.keyspace))
                    self._prepared[name] = stmt
            return list(session.execute(stmt, params, execution_profile=profile))
        except driver_errors() as e:
            raise unavailable(e) from e

    def set_value(self, service: str, service_key: str, key: str, value: str) -> None:
        self._run("insert", (service, service_key, key, value), WRITE)

    def get_value(self, service: str, service_key: str, key: str) -> str | None:
        rows = self._run("get", (service, service_key, key), READ)
        if not rows:
            return None
        return rows[0][0] or ""

    def list_service_keys(self, service: str) -> list[str]:
        return [row[0] for row in self._run("service_keys", (service,), READ)]

    def list_keys(
        self, service: str, service_key: str, starts_with: str | None = None
    ) -> list[str]:
        if starts_with:
            params = (service, service_key, starts_with, starts_with + CHAR_MAX)
            rows = self._run("keys_prefix", params, READ)
        else:
            rows = self._run("keys", (service, service_key), READ)
        # The static mtime row of a service key with no keys left has a null key.
        return [row[0] for row in rows if row[0] is not None]

    def delete_key(self, service: str, service_key: str, key: str) -> None:
        self._run("delete", (service, service_key, key), WRITE)
        self._run("touch", (service, service_key), WRITE)

    def close(self) -> None:
        """Nothing to do: the keyspace belongs to the datastore."""
