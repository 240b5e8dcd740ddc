# C types shared by the kernels, with their numpy dtypes in kairos/_native/__init__.py.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

ctypedef int64_t ts_t        # timestamps, ms since the epoch      (numpy int64)
ctypedef int64_t word_t      # a point's value word                (numpy int64)
ctypedef int32_t sid_t       # a row of a batch's series table     (numpy int32)
ctypedef uint8_t kind_t      # LONG=0 DOUBLE=1 STRING=2 HISTOGRAM=3 (numpy uint8)
ctypedef double f64_t        #                                      (numpy float64)
