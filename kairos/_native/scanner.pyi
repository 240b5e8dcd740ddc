import numpy as np

STATUS_NAMES: tuple[str, ...]
N_META: int

def scan(
    body: bytes,
    ts: np.ndarray,
    val: np.ndarray,
    code: np.ndarray,
    meta: np.ndarray,
    tags: np.ndarray,
    counts: np.ndarray,
) -> int: ...
def assign_series(code: np.ndarray, lut: np.ndarray, out: np.ndarray) -> None: ...
