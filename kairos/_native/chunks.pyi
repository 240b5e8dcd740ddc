from typing import TypeVar

import numpy as np
import numpy.typing as npt

_Buffer = bytes | bytearray | memoryview | npt.NDArray[np.uint8]
# The kernels take a ``list`` (Cython's ``list bufs``); a TypeVar lets a list of any subset of
# the buffer types through, which ``list[_Buffer]`` (invariant) would not.
_Bufs = TypeVar("_Bufs", bound=_Buffer)

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
def headers(bufs: list[_Bufs], out: npt.NDArray[np.int64]) -> tuple[int, int]: ...
def decode_list(
    bufs: list[_Bufs],
    picked: npt.NDArray[np.uint8],
    ts: npt.NDArray[np.int64],
    values: npt.NDArray[np.int64],
) -> tuple[int, int]: ...
