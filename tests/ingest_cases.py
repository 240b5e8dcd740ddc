"""Ingest cases shared by the parser unit tests and the HTTP integration tests.

Each case: a body template (``{m}`` becomes a unique metric-name prefix), the errors KairosDB
answers (``[]`` = 204), and what a query then returns per metric: ``{metric: [[ts, value], ...]}``
(types as KairosDB returns them).  Messages are those of spec §2.3 / DataPointsParser.
"""

from __future__ import annotations

CASES: list[tuple[str, str, list[str], dict[str, list]]] = [
    # -- accepted forms ---------------------------------------------------------------------
    (
        "datapoints-array",
        '[{"name":"{m}a","datapoints":[[1,10],[2,2.5]],"tags":{"host":"h"}}]',
        [],
        {"{m}a": [[1, 10], [2, 2.5]]},
    ),
    (
        "single-object",
        '{"name":"{m}a","timestamp":1234,"value":4321,"tags":{"foo":"bar"}}',
        [],
        {"{m}a": [[1234, 4321]]},
    ),
    (
        "time-alias-wins",
        '{"name":"{m}a","timestamp":1,"time":2,"value":7,"tags":{"foo":"bar"}}',
        [],
        {"{m}a": [[2, 7]]},
    ),
    (
        "both-forms-one-object",
        '{"name":"{m}a","timestamp":5,"value":1,"datapoints":[[6,2]],"tags":{"t":"v"}}',
        [],
        {"{m}a": [[5, 1], [6, 2]]},
    ),
    (
        "per-point-types",
        '[{"name":"{m}a","datapoints":[[1,123,"long"],[2,13.2,"double"],[3,"string_data","string"]],'
        '"tags":{"host":"server1"}}]',
        [],
        {"{m}a": [[1, 123], [2, 13.2], [3, "string_data"]]},
    ),
    (
        "inference-from-literal-text",
        '[{"name":"{m}a","datapoints":[[1,1],[2,1.0],[3,"12"],[4,"12.5"],[5,true],[6,"abc"],[7,"0.000000"]],'
        '"tags":{"t":"v"}}]',
        [],
        {"{m}a": [[1, 1], [2, 1], [3, 12], [4, 12.5], [5, "true"], [6, "abc"], [7, 0]]},
    ),
    (
        "exponent-without-dot-is-long",
        '{"name":"{m}a","timestamp":1,"value":1E5,"tags":{"t":"v"}}',
        [],
        {"{m}a": [[1, 100000]]},
    ),
    (
        "metric-type-string-allows-empty",
        '{"name":"{m}a","type":"string","timestamp":1,"value":"","tags":{"t":"v"}}',
        [],
        {"{m}a": [[1, ""]]},
    ),
    (
        "metric-type-double-of-int",
        '{"name":"{m}a","type":"double","datapoints":[[1,3],[2,"4.5"]],"tags":{"t":"v"}}',
        [],
        {"{m}a": [[1, 3], [2, 4.5]]},
    ),
    (
        "metric-type-long-truncates",
        '{"name":"{m}a","type":"long","datapoints":[[1,3.9],[2,"-4"]],"tags":{"t":"v"}}',
        [],
        {"{m}a": [[1, 3], [2, -4]]},
    ),
    (
        "zero-and-negative-timestamps",
        '[{"name":"{m}a","datapoints":[[0,1],[-5,2]],"tags":{"t":"v"}}]',
        [],
        {"{m}a": [[-5, 2], [0, 1]]},
    ),
    (
        "unicode-and-colons",
        '[{"name":"{m}bad:你好name","datapoints":[[1,1]],"tags":{"a:b":"c=d:e","ü":"ñ"}}]',
        [],
        {"{m}bad:你好name": [[1, 1]]},
    ),
    (
        "ttl-accepted",
        '[{"name":"{m}a","ttl":3600,"datapoints":[[1,1]],"tags":{"t":"v"}}]',
        [],
        {"{m}a": [[1, 1]]},
    ),
    (
        "overwrite-same-timestamp",
        '[{"name":"{m}a","datapoints":[[1,1],[1,2]],"tags":{"t":"v"}}]',
        [],
        {"{m}a": [[1, 2]]},
    ),
    (
        "long-and-double-same-timestamp-both-kept",
        '[{"name":"{m}a","datapoints":[[1,1],[1,2.5]],"tags":{"t":"v"}}]',
        [],
        {"{m}a": [[1, 1], [1, 2.5]]},
    ),
    (
        "empty-array",
        "[]",
        [],
        {},
    ),
    (
        "no-points-no-error",
        '[{"name":"{m}a","tags":{"t":"v"}}]',
        [],
        {"{m}a": []},
    ),
    # -- request-level errors ---------------------------------------------------------------
    ("empty-body", "", ["Invalid json. No content due to end of input."], {}),
    ("json-string-body", '"hello"', ["Invalid start of json."], {}),
    ("json-number-body", "42", ["Invalid start of json."], {}),
    # -- metric-level validation ----------------------------------------------------------
    (
        "name-missing-second-metric",
        '[{"name":"{m}a","datapoints":[[1,1]],"tags":{"t":"v"}},{"datapoints":[[1,1]],"tags":{"t":"v"}}]',
        ["metric[1].name may not be null."],
        {"{m}a": [[1, 1]]},
    ),
    (
        "name-empty",
        '[{"name":"","datapoints":[[1,1]],"tags":{"t":"v"}}]',
        ["metric[0].name may not be empty."],
        {},
    ),
    (
        "timestamp-without-value",
        '[{"name":"{m}a","timestamp":1,"tags":{"t":"v"}}]',
        ["metric[0](name={m}a).value may not be null."],
        {"{m}a": []},
    ),
    (
        "null-value",
        '[{"name":"{m}a","timestamp":1,"value":null,"tags":{"t":"v"}}]',
        ["metric[0](name={m}a).value may not be empty."],
        {"{m}a": []},
    ),
    (
        "empty-string-value-without-type",
        '[{"name":"{m}a","timestamp":1,"value":"","tags":{"t":"v"}}]',
        ["metric[0](name={m}a).value may not be empty."],
        {"{m}a": []},
    ),
    (
        "empty-array-value",
        '[{"name":"{m}a","timestamp":1,"value":[],"tags":{"t":"v"}}]',
        ["metric[0](name={m}a).value may not be an empty array."],
        {"{m}a": []},
    ),
    (
        "value-without-timestamp",
        '[{"name":"{m}a","value":1,"tags":{"t":"v"}}]',
        ["metric[0](name={m}a).timestamp may not be null."],
        {"{m}a": []},
    ),
    (
        "no-tags",
        '[{"name":"{m}a","datapoints":[[1,1]]}]',
        ["metric[0](name={m}a).tags count must be greater than or equal to 1."],
        {"{m}a": []},
    ),
    (
        "empty-tags",
        '[{"name":"{m}a","datapoints":[[1,1]],"tags":{}}]',
        ["metric[0](name={m}a).tags count must be greater than or equal to 1."],
        {"{m}a": []},
    ),
    (
        "empty-tag-name",
        '[{"name":"{m}a","datapoints":[[1,1]],"tags":{"":"x"}}]',
        ["metric[0](name={m}a).tag[0].name may not be empty."],
        {"{m}a": []},
    ),
    (
        "empty-tag-value",
        '[{"name":"{m}a","datapoints":[[1,1]],"tags":{"foo":""}}]',
        ["metric[0](name={m}a).tag[foo].value may not be empty."],
        {"{m}a": []},
    ),
    (
        "null-tag-value",
        '[{"name":"{m}a","datapoints":[[1,1]],"tags":{"foo":null}}]',
        ["metric[0](name={m}a).tag[foo].value may not be null."],
        {"{m}a": []},
    ),
    (
        "multiple-errors-accumulate",
        '[{"name":"{m}a","timestamp":1,"value":"","tags":{"name":""}}]',
        [
            "metric[0](name={m}a).value may not be empty.",
            "metric[0](name={m}a).tag[name].value may not be empty.",
        ],
        {"{m}a": []},
    ),
    (
        "object-value-invalid-type",
        '[{"name":"{m}a","timestamp":1,"value":{"a":1},"tags":{"t":"v"}}]',
        ["metric[0](name={m}a) value is an invalid type"],
        {"{m}a": []},
    ),
    (
        "unregistered-type",
        '[{"name":"{m}a","type":"complex-number","timestamp":1,"value":1,"tags":{"t":"v"}}]',
        ["Unregistered data point type 'complex-number'"],
        {"{m}a": []},
    ),
    # -- datapoint-level validation: the bad point is skipped, the rest stored ----------------
    (
        "datapoint-empty-entry",
        '[{"name":"{m}a","datapoints":[[],[5,5]],"tags":{"t":"v"}}]',
        ["metric[0](name={m}a).datapoints[0].timestamp cannot be null or empty."],
        {"{m}a": [[5, 5]]},
    ),
    (
        "datapoint-one-element",
        '[{"name":"{m}a","datapoints":[[1]],"tags":{"t":"v"}}]',
        ["metric[0](name={m}a).datapoints[0].value cannot be null or empty."],
        {"{m}a": []},
    ),
    (
        "datapoint-null-timestamp",
        '[{"name":"{m}a","datapoints":[[null,2]],"tags":{"t":"v"}}]',
        ["metric[0](name={m}a).datapoints[0].timestamp may not be null."],
        {"{m}a": []},
    ),
    (
        "datapoint-null-value",
        '[{"name":"{m}a","datapoints":[[2,null]],"tags":{"t":"v"}}]',
        ["metric[0](name={m}a).datapoints[0].value may not be empty."],
        {"{m}a": []},
    ),
    (
        "datapoint-counter-advances-only-on-success",
        '[{"name":"{m}a","datapoints":[[1,1],[2,null],[3,""],[4,4]],"tags":{"t":"v"}}]',
        [
            "metric[0](name={m}a).datapoints[1].value may not be empty.",
            "metric[0](name={m}a).datapoints[1].value may not be empty.",
        ],
        {"{m}a": [[1, 1], [4, 4]]},
    ),
    (
        "datapoint-object-value",
        '[{"name":"{m}a","datapoints":[[1,{"x":1}],[2,2]],"tags":{"t":"v"}}]',
        ["metric[0](name={m}a) value is an invalid type"],
        {"{m}a": [[2, 2]]},
    ),
    (
        "datapoint-unregistered-type",
        '[{"name":"{m}a","datapoints":[[1,1,"bogus"],[2,2]],"tags":{"t":"v"}}]',
        ["Unregistered data point type 'bogus'"],
        {"{m}a": [[2, 2]]},
    ),
    (
        "partial-ingest-valid-metric-kept",
        '[{"name":"{m}good","datapoints":[[1,1]],"tags":{"t":"v"}},{"name":"{m}bad","datapoints":[[1,1]]}]',
        ["metric[1](name={m}bad).tags count must be greater than or equal to 1."],
        {"{m}good": [[1, 1]], "{m}bad": []},
    ),
    (
        "collectd-nan-as-null",
        '[{"name":"{m}a","datapoints":[[1000,null]],"ttl":3600,"tags":{"host":"h","type":"gauge"}},'
        '{"name":"{m}b","datapoints":[[1000,1.5]],"ttl":3600,"tags":{"host":"h","type":"gauge"}}]',
        ["metric[0](name={m}a).datapoints[0].value may not be empty."],
        {"{m}a": [], "{m}b": [[1000, 1.5]]},
    ),
]


def render(template: str, prefix: str) -> str:
    return template.replace("{m}", prefix)


CASES += [
    (
        "single-point-invalid-histogram",
        '{"name":"{m}a","timestamp":1,"value":{"boundaries":[2,1],"counts":[1,1,1]},"tags":{"t":"v"}}',
        [
            "metric[0](name={m}a).value is an invalid histogram: "
            "histogram boundaries are not strictly increasing: boundaries[1] = 1.0 follows boundaries[0] = 2.0"
        ],
        {"{m}a": []},
    ),
]

CASES += [
    (
        "duplicate-tag-name-is-a-request-error",
        '[{"name":"{m}a","datapoints":[[1,1]],"tags":{"t":"v"}},{"name":"{m}b","datapoints":[[1,1]],"tags":{"a":"b","a":"c"}}]',
        ["duplicate key: a"],
        {"{m}a": [[1, 1]], "{m}b": []},
    ),
]
