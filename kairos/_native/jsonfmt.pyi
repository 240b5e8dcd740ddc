from collections.abc import Callable

import numpy as np

def points_json(
    ts: np.ndarray,
    f: np.ndarray,
    iv: np.ndarray,
    is_long: np.ndarray,
    special: Callable[[float], bytes],
    ftext: bytes,
) -> bytes: ...
