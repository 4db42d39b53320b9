"""Keep numpy's BLAS on one thread: the benchmark's speed is stated for one core.

Multi-threaded OpenBLAS on a busy two-core machine turns a 50 µs matrix-vector product
into milliseconds of thread hand-offs, so the runner asks for one thread before timing.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

__all__ = ["single_thread_blas"]

_SETTERS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads")


def single_thread_blas() -> bool:
    """Set BLAS to one thread (env for children, and the loaded OpenBLAS if found)."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    import numpy as np

    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for lib in sorted(libs.glob("*openblas*.so*")) if libs.is_dir() else []:
        try:
            handle = ctypes.CDLL(str(lib))
        except OSError:
            continue
        for name in _SETTERS:
            setter = getattr(handle, name, None)
            if setter is not None:
                setter(1)
                return True
    return False
