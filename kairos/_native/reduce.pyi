import numpy as np
import numpy.typing as npt

def segment_sum(
    values: npt.NDArray[np.float64], starts: npt.NDArray[np.int64], out: npt.NDArray[np.float64]
) -> int: ...
def segment_mean(
    values: npt.NDArray[np.float64], starts: npt.NDArray[np.int64], out: npt.NDArray[np.float64]
) -> int: ...
def segment_min(
    values: npt.NDArray[np.float64], starts: npt.NDArray[np.int64], out: npt.NDArray[np.float64]
) -> int: ...
def segment_max(
    values: npt.NDArray[np.float64], starts: npt.NDArray[np.int64], out: npt.NDArray[np.float64]
) -> int: ...
def segment_count(starts: npt.NDArray[np.int64], n: int, out: npt.NDArray[np.int64]) -> int: ...
def segment_dev(
    values: npt.NDArray[np.float64],
    starts: npt.NDArray[np.int64],
    out_dev: npt.NDArray[np.float64],
    out_mean: npt.NDArray[np.float64],
) -> int: ...
def segment_percentile(
    values: npt.NDArray[np.float64],
    starts: npt.NDArray[np.int64],
    p: float,
    scratch: npt.NDArray[np.int64],
    out: npt.NDArray[np.float64],
) -> int: ...
def segment_least_squares(
    ts: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    starts: npt.NDArray[np.int64],
    out_first: npt.NDArray[np.float64],
    out_last: npt.NDArray[np.float64],
) -> int: ...
def bucket_fixed(
    ts: npt.NDArray[np.int64], origin: int, width: int, out: npt.NDArray[np.int64]
) -> int: ...
def bucket_runs(
    ts: npt.NDArray[np.int64],
    origin: int,
    width: int,
    starts: npt.NDArray[np.int64],
    keys: npt.NDArray[np.int64],
) -> int: ...
def segment_starts(keys: npt.NDArray[np.int64], out: npt.NDArray[np.int64]) -> int: ...
def sma(values: npt.NDArray[np.float64], size: int, out: npt.NDArray[np.float64]) -> int: ...
def sma_running(
    values: npt.NDArray[np.float64], size: int, out: npt.NDArray[np.float64]
) -> int: ...
