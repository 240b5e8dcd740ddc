import numpy as np
import numpy.typing as npt

_Buffer = bytes | bytearray | memoryview | npt.NDArray[np.uint8]

def max_encoded_size(n: int) -> int: ...
def encode(
    ts: npt.NDArray[np.int64],
    words: npt.NDArray[np.int64],
    is_double: bool,
    out: npt.NDArray[np.uint8],
    scratch: npt.NDArray[np.int64],
) -> int: ...
def header(buf: _Buffer, out: npt.NDArray[np.int64]) -> int: ...
def decode(buf: _Buffer, ts: npt.NDArray[np.int64], values: npt.NDArray[np.int64]) -> int: ...
def headers(bufs: list[_Buffer], out: npt.NDArray[np.int64]) -> tuple[int, int]: ...
def decode_list(
    bufs: list[_Buffer],
    picked: npt.NDArray[np.uint8],
    ts: npt.NDArray[np.int64],
    values: npt.NDArray[np.int64],
) -> tuple[int, int]: ...
