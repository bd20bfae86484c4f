"""The study's pickle format ``[x, y, train_ind, test_ind]``: import into HDF5, and export back."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from cl_rnn.atomic import atomic_path
from cl_rnn.data.store import DataError, check_arrays, load_dataset, write_dataset


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


STUDY_NUM_CLASSES = 100  # the study's loader hard-codes it


def export_pickle(src: str | Path, dst: str | Path) -> Path:
    """Write a dataset file in the study's pickle format, so the study's own code runs on it.

    x stays uint8 (N, 10, 128); y, train_ind and test_ind are int64 (N,) arrays, as the study's
    loader reads them.  Raises DataError for an unreadable file or one the study cannot load.
    """
    dataset = load_dataset(src)
    if dataset.num_classes != STUDY_NUM_CLASSES:
        raise DataError(f"{src}: has {dataset.num_classes} classes; the study's code loads exactly "
                        f"{STUDY_NUM_CLASSES}")
    content = [dataset.x.numpy(), dataset.y.numpy().astype(np.int64),
               dataset.train_idx.numpy().astype(np.int64), dataset.test_idx.numpy().astype(np.int64)]
    dst = Path(dst)
    try:
        with atomic_path(dst) as tmp, open(tmp, "wb") as f:
            pickle.dump(content, f, protocol=4)
    except OSError as err:
        raise DataError(f"{dst}: cannot write: {err.strerror or err}") from None
    return dst
