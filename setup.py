"""Build the Cython kernels in ``kairos/_native``.

Compiler directives are set once here.  ``KAIROS_CYTHON_DEBUG=1`` switches bounds checking and
wraparound back on for debugging a kernel.
"""

import os
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("KAIROS_CYTHON_DEBUG") == "1"

directives = {
    "language_level": "3",
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "cdivision": True,
    "initializedcheck": DEBUG,
    "embedsignature": True,
}

extensions = [
    Extension(
        f"kairos._native.{path.stem}",
        [str(path)],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"] if not DEBUG else ["-O0", "-g"],
    )
    for path in sorted(Path("kairos/_native").glob("*.pyx"))
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives, quiet=True))
