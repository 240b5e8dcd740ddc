"""The Cassandra keyspace opens while Cassandra is down and says why it cannot serve yet."""

from __future__ import annotations

import pytest

from kairos.config import load
from kairos.errors import DatastoreStarting, DatastoreUnavailable
from kairos.storage.cassandra.store import CassandraStore
from tests.conftest import free_port


@pytest.mark.parametrize("writer", [False, True])
def test_a_store_opens_while_cassandra_is_down(tmp_path, writer: bool) -> None:
    port = free_port()  # nothing listens there
    config = load(
        env={
            "KAIROSDB_DATASTORE": "cassandra",
            "KAIROSDB_CASSANDRA_CONTACT_POINTS": f"127.0.0.1:{port}",
            "KAIROSDB_DATA_DIR": str(tmp_path),
        }
    )
    store = CassandraStore(config, writer=writer)
    try:
        assert not store.db.ready
        assert store.cluster is None
        down = (
            f"Cassandra is unavailable: no host answered (tried 127.0.0.1:{port}); "
            "the request can be retried"
        )
        for call in (
            store.metric_names,
            lambda: store.find_series("m", {}),
            lambda: store.session,
        ):
            with pytest.raises(DatastoreUnavailable) as info:
                call()
            assert not isinstance(info.value, DatastoreStarting)
            assert info.value.messages == [down]
            assert info.value.retry_after == 1
        assert store.wal_positions == {}  # the checkpoint is local: the writer can start
    finally:
        store.close()
    with pytest.raises(DatastoreUnavailable, match=r"^the Cassandra session is closed$"):
        store.metric_names()
