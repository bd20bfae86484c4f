"""import-pickle, export-pickle and the surrogate command, through the ``cl-rnn data`` CLI."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from cl_rnn.cli import main as cl_rnn_main
from cl_rnn.data.legacy import export_pickle, import_pickle
from cl_rnn.data.store import DataError, load_dataset
from cl_rnn.data.surrogate import make_surrogate


def study_pickle(path, y_shape=(-1,), **changes):
    x, y, train, test, _ = make_surrogate(seed=2, clips_per_class=10, num_classes=4)
    content = {"x": x, "y": y.reshape(y_shape), "train": train, "test": test, **changes}
    with open(path, "wb") as f:
        pickle.dump([content["x"], content["y"], content["train"], content["test"]], f)
    return path, x, y


@pytest.mark.parametrize("y_shape", [(-1,), (-1, 1)])
def test_import_pickle_round_trip(tmp_path, y_shape):
    src, x, y = study_pickle(tmp_path / "audioset_data_balanced.pickle", y_shape)
    data = load_dataset(import_pickle(src, tmp_path / "out.h5"))
    assert (data.x.numpy() == x).all() and data.y.tolist() == y.tolist()
    assert len(data.train_idx) == 32 and data.attrs["source"] == "study pickle"


def test_bad_pickles_are_one_line_errors(tmp_path):
    truncated = tmp_path / "t.pickle"
    truncated.write_bytes(study_pickle(tmp_path / "ok.pickle")[0].read_bytes()[:1000])
    with pytest.raises(DataError, match=r"t\.pickle: not a readable pickle"):
        import_pickle(truncated, tmp_path / "o.h5")
    wrong = study_pickle(tmp_path / "w.pickle", x=np.zeros((40, 10, 128), np.float64))[0]
    with pytest.raises(DataError, match=r"w\.pickle: x has dtype float64, expected uint8"):
        import_pickle(wrong, tmp_path / "o.h5")
    with pytest.raises(DataError, match=r"nothere\.pickle: no such file"):
        import_pickle(tmp_path / "nothere.pickle", tmp_path / "o.h5")
    assert not (tmp_path / "o.h5").exists()


def test_cli_commands_write_loadable_files(tmp_path, capsys):
    src = study_pickle(tmp_path / "s.pickle")[0]
    assert cl_rnn_main(["data", "import-pickle", str(src), "--out", str(tmp_path / "p.h5")]) == 0
    assert cl_rnn_main(["data", "surrogate", "--out", str(tmp_path / "s.h5"), "--seed", "1",
                        "--clips-per-class", "10"]) == 0
    out = capsys.readouterr().out
    assert "40 clips, 4 classes" in out and "1000 clips, 100 classes (10-10 per class)" in out
    assert load_dataset(tmp_path / "s.h5").attrs["surrogate_seed"] == 1


@pytest.mark.parametrize("make_bad, problem", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b"\x80\x04garbage"), "not a readable pickle"),
])
def test_cli_error_is_one_line_and_status_2(tmp_path, capsys, make_bad, problem):
    bad = tmp_path / "bad.pickle"
    make_bad(bad)
    assert cl_rnn_main(["data", "import-pickle", str(bad), "--out", str(tmp_path / "o.h5")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cl-rnn data: error: {bad}: {problem}") and err.count("\n") == 1


def test_export_pickle_is_what_the_study_loads_and_imports_back(tmp_path, capsys):
    h5 = tmp_path / "s.h5"
    assert cl_rnn_main(["data", "surrogate", "--out", str(h5), "--seed", "3", "--clips-per-class", "4"]) == 0
    out = tmp_path / "study" / "audioset_data_balanced.pickle"
    assert cl_rnn_main(["data", "export-pickle", str(h5), "--out", str(out)]) == 0
    assert f"{out}: 400 clips, 100 classes" in capsys.readouterr().out
    with open(out, "rb") as f:
        x, y, train_ind, test_ind = pickle.load(f)
    assert x.dtype == np.uint8 and x.shape == (400, 10, 128)
    assert y.dtype == train_ind.dtype == test_ind.dtype == np.int64 and y.shape == (400,)
    original, back = load_dataset(h5), load_dataset(import_pickle(out, tmp_path / "back.h5"))
    for name in ("x", "y", "train_idx", "test_idx"):
        assert getattr(back, name).equal(getattr(original, name)), name


def test_export_pickle_refuses_what_the_study_cannot_load(tmp_path, capsys):
    src = import_pickle(study_pickle(tmp_path / "four.pickle")[0], tmp_path / "four.h5")
    with pytest.raises(DataError, match=r"four\.h5: has 4 classes; the study's code loads exactly 100"):
        export_pickle(src, tmp_path / "x.pickle")
    assert cl_rnn_main(["data", "export-pickle", str(tmp_path / "none.h5"), "--out", "x.pickle"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "x.pickle").exists()
