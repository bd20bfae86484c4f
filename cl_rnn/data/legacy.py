"""Import of the study's released pickle ``[x, y, train_ind, test_ind]`` into the HDF5 format."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from cl_rnn.data.store import DataError, check_arrays, write_dataset


def _unpickle(src: Path) -> list:
    if not src.exists():
        raise DataError(f"{src}: no such file")
    try:
        with open(src, "rb") as f:
            try:
                return pickle.load(f)
            except UnicodeDecodeError:  # written by Python 2
                f.seek(0)
                return pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError) as err:
        raise DataError(f"{src}: not a readable pickle (truncated or corrupt?): {err}") from None


def import_pickle(src: str | Path, dst: str | Path) -> Path:
    """Convert the study's pickle (y may be (N,) or (N, 1)) into a validated HDF5 file."""
    src, dst = Path(src), Path(dst)
    content = _unpickle(src)
    if not isinstance(content, (list, tuple)) or len(content) != 4:
        raise DataError(f"{src}: expected a list [x, y, train_ind, test_ind], "
                        f"got {type(content).__name__}")
    x, y, train_idx, test_idx = (np.asarray(a) for a in content)
    y, train_idx, test_idx = (a.reshape(-1) if a.ndim == 2 and a.shape[1] == 1 else a
                              for a in (y, train_idx, test_idx))
    check_arrays(src, x, y, train_idx, test_idx)
    attrs = {"source": "study pickle", "imported_from": str(src.resolve()),
             "num_classes": int(y.max()) + 1}
    write_dataset(dst, x, y, train_idx, test_idx, attrs)
    return dst
