"""Cython kernels: loops over typed arrays and nothing else.

Each kernel has a plain Python/numpy reference next to its facade and a hypothesis test that the
two agree.  The numpy dtypes matching ``_types.pxd``:
"""

import numpy as np

TS_DTYPE = np.int64
WORD_DTYPE = np.int64
SID_DTYPE = np.int32
KIND_DTYPE = np.uint8
F64_DTYPE = np.float64
