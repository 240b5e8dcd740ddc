from collections.abc import Callable

import numpy as np

def shortest_decimals(x: np.ndarray, digits: np.ndarray, exps: np.ndarray) -> None: ...
def log_scales(q: int, first_of_binade: bool) -> tuple[int, int]: ...
def points_json(
    ts: np.ndarray,
    f: np.ndarray,
    iv: np.ndarray,
    is_long: np.ndarray,
    special: Callable[[float], bytes],
) -> bytes: ...
