"""The code computes what it computed when tests/golden/ was recorded: bit for bit on that machine.

A refactor must leave every case the same; a change meant to alter results re-records the cases it
changes (``python tests/golden.py record CASE ...``) and says why in its commit.
"""
from __future__ import annotations

import pytest

import golden


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return golden.golden_data(tmp_path_factory.mktemp("golden"))


@pytest.mark.filterwarnings("ignore:--use_cuda", "ignore:--use_masks implies")
@pytest.mark.parametrize("case", golden.all_cases())
def test_case_is_as_recorded(case, data, tmp_path):
    assert golden.golden_path(case).is_file(), f"{case}: not recorded; run python tests/golden.py record {case}"
    assert golden.check(case, data, tmp_path) == []


def test_a_changed_result_is_reported():
    recorded = {"machine": golden.machine(), "accuracy_matrix": ["0x1.0p+3 0x1.0p+4"],
                "performance_overview": "a", "final_weights_sha256": "x"}
    changed = {**recorded, "accuracy_matrix": ["0x1.0p+3 0x1.0000000000001p+4"]}
    assert golden.differences("c", recorded, changed) == ["c: accuracy_matrix differs"]
    assert golden.differences("c", {**recorded, "machine": "another"}, changed) == []
    far = {**recorded, "accuracy_matrix": ["0x1.0p+3 0x1.0p+5"]}
    assert "accuracies differ by up to 16.00 points" in golden.differences("c", {**recorded, "machine": "m"}, far)[0]
