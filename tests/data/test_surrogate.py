"""The surrogate: deterministic, the study's layout, VGGish-like bytes."""
import numpy as np

from cl_rnn.data.store import load_dataset
from cl_rnn.data.surrogate import make_surrogate, write_surrogate


def test_same_seed_same_bytes_other_seed_other_bytes():
    a = make_surrogate(seed=3, clips_per_class=10, num_classes=5)
    b = make_surrogate(seed=3, clips_per_class=10, num_classes=5)
    c = make_surrogate(seed=4, clips_per_class=10, num_classes=5)
    assert all(np.array_equal(p, q) for p, q in zip(a[:4], b[:4]))
    assert not np.array_equal(a[0], c[0])


def test_layout_train_class_by_class_then_test():
    x, y, train, test, attrs = make_surrogate(seed=0, clips_per_class=10, num_classes=3)
    assert x.shape == (30, 10, 128) and x.dtype == np.uint8
    assert train.tolist() == list(range(24)) and test.tolist() == list(range(24, 30))
    assert y.tolist() == [0] * 8 + [1] * 8 + [2] * 8 + [0, 0, 1, 1, 2, 2]
    assert attrs["source"] == "surrogate" and len(attrs["class_names"]) == 3


def test_bytes_look_like_vggish():
    x, *_ = make_surrogate(seed=0, clips_per_class=50, num_classes=20)
    assert 115 < x.mean() < 141 and 40 < x.std() < 100
    assert x.min() == 0 and x.max() == 255  # the tails are clipped like VGGish's quantiser


def test_write_surrogate_is_loadable(tmp_path):
    path = write_surrogate(tmp_path / "s.h5", seed=1, clips_per_class=10, num_classes=10)
    data = load_dataset(path)
    assert data.num_classes == 10 and len(data.train_idx) == 80 and data.attrs["surrogate_seed"] == 1
