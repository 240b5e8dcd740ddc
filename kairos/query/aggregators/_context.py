"""What an aggregator sees besides its group: the query, the metric, and where ``save_as``
publishes; plus the two rules every implementation applies before it computes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import TypeVar

from kairos.errors import QueryFailed
from kairos.model.batch import Batch
from kairos.query.model import MetricQuery, Query
from kairos.query.spec import TagGroupBy
from kairos.query.stream import Stream

__all__ = ["Context", "Publish", "numbers_only", "refuse_gaps"]

Publish = Callable[[Batch], None]
"""Receives the batches ``save_as`` produces (the HTTP layer appends them to the WAL)."""


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 4x, once per group
class Context:
    """One group's surroundings, built once per group (not per aggregator or point)."""

    query: Query
    metric: MetricQuery
    tag_group_by: TagGroupBy | None
    tagsets: dict[str, set[str]]  # every value of each tag of the group's series
    publish: Publish | None
    now: int


def refuse_gaps(s: Stream) -> None:
    """An aggregator that reads values cannot take the null points ``gaps`` inserts."""
    if s.null is not None and s.null.any():
        raise QueryFailed(
            "No aggregator can be chained after org.kairosdb.core.aggregator.DataGapsMarkingAggregator"
        )


Spec = TypeVar("Spec")


def numbers_only(
    fn: Callable[[Spec, Stream, Context], Stream],
) -> Callable[[Spec, Stream, Context], Stream]:
    """An aggregator of numbers: KairosDB silently skips it for a text or histogram group."""

    @wraps(fn)
    def run(agg: Spec, s: Stream, ctx: Context) -> Stream:
        if s.gtype != "number":
            return s
        refuse_gaps(s)
        return fn(agg, s, ctx)

    return run
