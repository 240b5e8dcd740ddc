import numpy as np
import numpy.typing as npt

def bucket_samples(
    boundaries: npt.NDArray[np.float64],
    samples: npt.NDArray[np.float64],
    counts: npt.NDArray[np.int64],
    stats: npt.NDArray[np.float64],
) -> int: ...
def remap_counts(
    src_boundaries: npt.NDArray[np.float64],
    src_counts: npt.NDArray[np.int64],
    dst_boundaries: npt.NDArray[np.float64],
    out: npt.NDArray[np.int64],
) -> int: ...
def remap_counts_batch(
    boundaries: npt.NDArray[np.float64],
    offsets: npt.NDArray[np.int64],
    counts: npt.NDArray[np.int64],
    dst_boundaries: npt.NDArray[np.float64],
    out: npt.NDArray[np.int64],
) -> int: ...
def percentile(
    boundaries: npt.NDArray[np.float64],
    counts: npt.NDArray[np.int64],
    vmin: float,
    vmax: float,
    q: float,
) -> float: ...
def percentile_batch(
    boundaries: npt.NDArray[np.float64],
    offsets: npt.NDArray[np.int64],
    counts: npt.NDArray[np.int64],
    mins: npt.NDArray[np.float64],
    maxs: npt.NDArray[np.float64],
    q: float,
    out: npt.NDArray[np.float64],
) -> None: ...
def encode_varints(values: npt.NDArray[np.int64], out: npt.NDArray[np.uint8]) -> int: ...
def decode_varints(
    buf: npt.NDArray[np.uint8] | bytes | memoryview,
    pos: int,
    out: npt.NDArray[np.int64],
    where: npt.NDArray[np.int64],
) -> int: ...
