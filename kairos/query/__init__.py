"""Query: KairosDB's query JSON -> a plan -> the aggregator chain -> the response.

::

    body (decoded JSON)
      |  parse            model.parse_query: the query's fields, then per metric its tags,
      |                   group_by and aggregators (parse_aggregators), converted as Gson does
      |                   (_gson) bean by bean (_beans), failing with KairosDB's first message
      v
    Query (model) of MetricQuery, each with typed GroupBy / Aggregator specs (spec)
      |  select           engine: series of the metric matching the tag filter (the store's
      |                   index; regex filters here), read in the range (cache: QueryCache)
      |  merge            engine: one group per data type and tag group-by, its series merged
      |                   by timestamp (kernels) into one column Stream (stream)
      |  split            engine: time / value / bin group-bys, then the metric's limit
      |  aggregate        aggregators: each spec -> its implementation by a registry lookup
      |                   (buckets: timebuckets, moving_window; histograms: histograms)
      v
    {"queries": [{"sample_size": n, "results": [...]}]}   values written by _format

Importing ``kairos.query`` is cheap: the names below load their modules on first use, and the
submodules never import from this package's namespace (only its submodules), so no cycle runs
through it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kairos.query.cache import QueryCache
    from kairos.query.engine import Limits, run_query, run_tags_query
    from kairos.query.model import Query, parse_query

__all__ = ["Limits", "Query", "QueryCache", "parse_query", "run_query", "run_tags_query"]

_HOME = {
    "Limits": "kairos.query.engine",
    "Query": "kairos.query.model",
    "QueryCache": "kairos.query.cache",
    "parse_query": "kairos.query.model",
    "run_query": "kairos.query.engine",
    "run_tags_query": "kairos.query.engine",
}


def __getattr__(name: str) -> object:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
