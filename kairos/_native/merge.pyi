import numpy as np

def merge_sorted(
    ts_list: list[np.ndarray], f_list: list[np.ndarray], radix_min_k: int = 16
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
