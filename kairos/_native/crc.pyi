import numpy as np
import numpy.typing as npt

_Buffer = bytes | bytearray | memoryview | npt.NDArray[np.uint8]

HAS_CLMUL: bool

def use_clmul(on: bool) -> bool: ...
def crc32(data: _Buffer, value: int = 0) -> int: ...
def check_records(
    buf: _Buffer,
    offsets: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    crcs: npt.NDArray[np.uint32],
) -> int: ...
