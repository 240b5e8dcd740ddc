from collections.abc import Callable

import numpy as np

def convert_datapoints(
    dps: list,
    fast_kind: int,
    slow: Callable[[list, int], tuple[int, int, int] | None],
    ts_out: np.ndarray,
    word_out: np.ndarray,
    kind_out: np.ndarray,
) -> int: ...
