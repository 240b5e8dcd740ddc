"""Every backend implements the whole ``Datastore`` protocol, with the protocol's signatures.

``make lint`` type-checks the same through ``open_store``'s return type; this test also runs
where mypy does not, and names the member that drifted.
"""

from __future__ import annotations

import inspect

import pytest

from kairos.storage.cassandra.store import CassandraStore
from kairos.storage.embedded.store import EmbeddedStore
from kairos.storage.protocol import Datastore

MEMBERS = sorted(
    name
    for name, value in vars(Datastore).items()
    if not name.startswith("_") and (callable(value) or isinstance(value, property))
)


def _params(fn) -> list[tuple[str, object, bool]]:
    sig = inspect.signature(fn)
    return [
        (p.name, p.kind, p.default is not inspect.Parameter.empty) for p in sig.parameters.values()
    ]


def test_the_protocol_declares_what_callers_use() -> None:
    assert set(MEMBERS) >= {
        "write",
        "write_many",
        "refresh",
        "metric_names",
        "tag_names",
        "tag_values",
        "find_series",
        "count",
        "read",
        "delete",
        "wal_positions",
        "close",
    }
    assert "is_writer" in Datastore.__annotations__


@pytest.mark.parametrize("backend", [EmbeddedStore, CassandraStore], ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", MEMBERS)
def test_backend_implements(backend: type, name: str) -> None:
    want = vars(Datastore)[name]
    have = inspect.getattr_static(backend, name, None)
    assert have is not None, f"{backend.__name__} lacks {name}"
    if isinstance(want, property):
        assert isinstance(have, property), f"{backend.__name__}.{name} is not a property"
        return
    assert _params(have) == _params(want), (
        f"{backend.__name__}.{name}{inspect.signature(have)} != Datastore.{name}{inspect.signature(want)}"
    )
