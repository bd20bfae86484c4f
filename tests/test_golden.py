"""The code computes what it computed when tests/golden/ was recorded: bit for bit on each recording machine.

A refactor must leave every case the same; a change meant to alter results re-records the cases it
changes (``python tests/golden.py record CASE ...``) and says why in its commit.  On a machine with no
recording the cases are skipped (saying so): another CPU's rounding changes the numbers.
"""
from __future__ import annotations

import json

import pytest

import golden


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return golden.golden_data(tmp_path_factory.mktemp("golden"))


@pytest.mark.filterwarnings("ignore:--use_cuda", "ignore:--use_masks implies")
@pytest.mark.parametrize("case", golden.all_cases())
def test_case_is_as_recorded(case, data, tmp_path):
    assert golden.golden_path(case).is_file(), f"{case}: not recorded; run python tests/golden.py record {case}"
    reason = golden.unrecorded_reason(case)
    if reason:
        pytest.skip(reason)
    assert golden.check(case, data, tmp_path) == []


def test_a_changed_result_is_reported():
    recorded = {"accuracy_matrix": ["0x1.0p+3 0x1.0p+4"], "performance_overview": "a", "final_weights_sha256": "x"}
    changed = {**recorded, "accuracy_matrix": ["0x1.0p+3 0x1.0000000000001p+4"]}
    assert golden.differences("c", recorded, changed) == ["c: accuracy_matrix differs"]
    assert golden.differences("c", recorded, dict(recorded)) == []
    members = {"members": [recorded, recorded]}
    assert golden.differences("c", members, {"members": [recorded]}) == ["c: 2 members recorded, 1 now"]


def test_recordings_are_kept_per_machine(tmp_path, monkeypatch):
    monkeypatch.setattr(golden, "FOLDER", tmp_path)
    monkeypatch.setattr(golden, "compute", lambda case, data, work: {"accuracy_matrix": [case]})
    path = golden.golden_path("method/x")
    path.write_text(json.dumps({"case": "method/x", "recordings": {"another CPU": {"accuracy_matrix": ["old"]}}}))
    assert "not recorded on this machine" in golden.unrecorded_reason("method/x")
    golden.record("method/x", None, tmp_path, add=True)
    assert set(golden.recordings("method/x")) == {"another CPU", golden.machine()}
    assert golden.unrecorded_reason("method/x") is None
    golden.record("method/x", None, tmp_path)  # results changed on purpose: the other machine's is stale
    assert set(golden.recordings("method/x")) == {golden.machine()}
