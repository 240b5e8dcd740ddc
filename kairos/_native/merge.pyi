import numpy as np

def merge_sorted(
    ts_list: list[np.ndarray], f_list: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
