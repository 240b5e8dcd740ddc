import numpy as np
import numpy.typing as npt

def row_times(ts: npt.NDArray[np.int64], width: int, out: npt.NDArray[np.int64]) -> None: ...
def encode_columns(
    ts: npt.NDArray[np.int64],
    row_time: npt.NDArray[np.int64],
    unit: int,
    out: npt.NDArray[np.uint8],
) -> None: ...
def decode_columns(
    buf: npt.NDArray[np.uint8] | bytes, row_time: int, unit: int, out: npt.NDArray[np.int64]
) -> None: ...
def encode_longs(
    values: npt.NDArray[np.int64], out: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64]
) -> None: ...
def decode_longs(
    buf: npt.NDArray[np.uint8] | bytes,
    offsets: npt.NDArray[np.int64],
    out: npt.NDArray[np.int64],
) -> int: ...
def encode_doubles(values: npt.NDArray[np.float64], out: npt.NDArray[np.uint8]) -> None: ...
def decode_doubles(
    buf: npt.NDArray[np.uint8] | bytes,
    offsets: npt.NDArray[np.int64],
    out: npt.NDArray[np.float64],
) -> int: ...
def decode_mutf8(
    buf: npt.NDArray[np.uint8] | bytes,
    offsets: npt.NDArray[np.int64],
    out: npt.NDArray[np.uint8],
    out_offsets: npt.NDArray[np.int64],
) -> int: ...
def decode_legacy(
    cols: npt.NDArray[np.uint8] | bytes,
    buf: npt.NDArray[np.uint8] | bytes,
    offsets: npt.NDArray[np.int64],
    row_time: int,
    ts: npt.NDArray[np.int64],
    is_double: npt.NDArray[np.uint8],
    longs: npt.NDArray[np.int64],
    doubles: npt.NDArray[np.float64],
) -> int: ...
def cell_offsets(values: list[bytes], offsets: npt.NDArray[np.int64]) -> None: ...
def split_bytes(buf: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64]) -> list[bytes]: ...
def split_fixed(buf: npt.NDArray[np.uint8], size: int) -> list[bytes]: ...
def utf16le_strings(buf: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64]) -> list[str]: ...
