"""Our stratified split draws exactly what scikit-learn's train_test_split draws."""
import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from cl_rnn.data.split import stratified_split


@pytest.mark.parametrize("counts, test_size, seed", [
    ([800] * 10, 500, 42),  # the study's task: 8,000 clips, 500 validation
    ([24] * 10, 50, 42),
    ([7, 5, 9, 3], 7, 0),  # uneven classes: remainders tie, broken by the random state
    ([3, 3, 3], 4, 3),  # 5 train clips over 3 equal classes: a pure tie
    ([30, 10, 11], 13, 123),
])
def test_matches_sklearn(counts, test_size, seed):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(counts)) * 3 + 1, counts))  # non-contiguous
    items = rng.permutation(10 * len(labels))[:len(labels)]
    expected = train_test_split(items, test_size=test_size, stratify=labels, random_state=seed)
    ours = stratified_split(items, labels, test_size, seed)
    assert [a.tolist() for a in ours] == [a.tolist() for a in expected]


def test_too_small_validation_is_refused():
    with pytest.raises(ValueError, match="smaller than the number of classes"):
        stratified_split(np.arange(20), np.repeat(np.arange(4), 5), 3, 0)
