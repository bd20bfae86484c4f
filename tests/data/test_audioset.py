"""The AudioSet builder applies the study's selection (spec 1.2) rule by rule.

Small TFRecord files of realistic SequenceExamples: multi-label clips, short and long clips,
parent, restricted, low-confidence and unrated classes; a directory and a gzip'd tar whose members
are stored out of order.  Every clip's frames carry its id, so the output can be checked exactly
against a direct, in-memory reading of the spec.
"""
from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
from tfrecord.writer import TFRecordWriter

from cl_rnn.data.audioset import build_from_features
from cl_rnn.data.cli import main as data_main
from cl_rnn.data.store import DataError, load_dataset

META = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "audioset_meta"
# AudioSet indices (class_labels_indices.csv rows) of the classes the clips use
A, B, C, D, E = 1, 2, 3, 4, 5  # candidates, in ontology order
PARENT, RESTRICTED, LOW, UNRATED, NOT_LISTED = 0, 523, 7, 31, 34  # Speech, Vibration, ...
FILES = ("bal_train/b.tfrecord", "eval/c.tfrecord", "unbal_train/a.tfrecord")  # sorted


def clip_specs() -> list[tuple[list[int], int]]:
    """(labels, frames) of every clip; see the comments for what each group tests."""
    specs = [([A], 10)] * 7 + [([B], 10)] * 6 + [([C], 10)] * 4 + [([D], 10)] * 5 + [([E], 10)] * 2
    specs += [([A, PARENT], 10), ([B, RESTRICTED], 10), ([C, LOW], 10)]  # one candidate: counted
    specs += [([A, B], 10)]  # two candidates: never kept
    specs += [([A, E], 10)]  # not counted (2 candidates) but kept for A in pass 2 (E not chosen)
    specs += [([D, E], 10)] * 4  # counted for neither (else D, with 9, would be chosen)
    specs += [([E], 9)] * 3 + [([E], 11)] * 3  # not 10 frames (else E, with 8, would be chosen)
    for other in (PARENT, RESTRICTED, LOW, UNRATED, NOT_LISTED):  # not candidates (else chosen)
        specs += [([other], 10)] * 10
    # counts: A 8, B 7, C 5, D 5, E 2 -> cutoff 5 ties C and D: A, B, C (warning)
    return specs


def frames_of(clip_id: int, count: int, rng: np.random.Generator) -> list[bytes]:
    frames = rng.integers(0, 256, (count, 128), dtype=np.uint8)
    frames[:, 0], frames[:, 1], frames[:, 2] = clip_id // 256, clip_id % 256, np.arange(count)
    return [f.tobytes() for f in frames]


def write_features(folder: Path) -> dict[str, list[tuple[int, list[int], int]]]:
    """Spread the clips over FILES at random; returns file -> [(clip id, labels, frames)]."""
    rng = np.random.default_rng(0)
    content: dict[str, list] = {name: [] for name in FILES}
    for clip_id, (labels, frames) in enumerate(clip_specs()):
        content[FILES[rng.integers(len(FILES))]].append((clip_id, labels, frames))
    for name, clips in content.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        writer = TFRecordWriter(str(folder / name))
        for clip_id, labels, count in clips:
            writer.write({"video_id": (f"vid{clip_id}".encode(), "byte"),
                          "start_time_seconds": (30.0, "float"), "end_time_seconds": (40.0, "float"),
                          "labels": (labels, "int")},
                         {"audio_embedding": (frames_of(clip_id, count, rng), "byte")})
        writer.close()
    (folder / "README.txt").write_text("not a record file")
    return content


def expected_ids(content, chosen: list[int], per_class: int = 5, test: int = 1) -> list[int]:
    """The spec read directly: stream order = sorted file name, then position in the file."""
    kept: list[list[int]] = [[] for _ in chosen]
    for name in sorted(content):
        for clip_id, labels, frames in content[name]:
            hits = [chosen.index(label) for label in labels if label in chosen]
            if frames == 10 and len(hits) == 1:
                kept[hits[0]].append(clip_id)
    np.random.seed(42)
    train, tests = [], []
    for ids in kept:
        order = np.arange(len(ids))
        np.random.shuffle(order)
        train += [ids[i] for i in order[:per_class - test]]
        tests += [ids[i] for i in order[per_class - test:per_class]]
    return train + tests


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    folder = tmp_path_factory.mktemp("features")
    content = write_features(folder / "audioset_v1_embeddings")
    archive = folder / "features.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # members stored in reverse (unsorted) order
        for name in [*reversed(FILES), "README.txt"]:
            tar.add(folder / "audioset_v1_embeddings" / name, arcname=f"audioset_v1_embeddings/{name}")
    return folder / "audioset_v1_embeddings", archive, content


def build(source: Path, out: Path) -> Path:
    with pytest.warns(UserWarning, match="ties at the cutoff"):
        return build_from_features(source, META, out, num_classes=3, clips_per_class=5,
                                   test_fraction=0.2, progress=False)


def test_selection_matches_the_spec_exactly(features, tmp_path):
    folder, _, content = features
    data = load_dataset(build(folder, tmp_path / "out.h5"))
    ids = (data.x[:, 0, 0].long() * 256 + data.x[:, 0, 1].long()).tolist()
    assert ids == expected_ids(content, [A, B, C])
    assert data.x[:, :, 2].tolist() == [list(range(10))] * len(ids)  # frames in order
    assert data.y.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [0, 1, 2]
    assert data.train_idx.tolist() == list(range(12)) and data.test_idx.tolist() == [12, 13, 14]
    attrs = data.attrs
    assert attrs["source"] == "audioset" and attrs["audioset_indices"] == [A, B, C]
    assert attrs["class_names"] == ["Male speech, man speaking", "Female speech, woman speaking",
                                    "Child speech, kid speaking"]
    assert attrs["class_ids"] == ["/m/05zppz", "/m/02zsn", "/m/0ytgt"]
    assert attrs["clips_kept_per_class"] == [9, 7, 5]  # [A, B] dropped, [A, E] kept for A
    assert attrs["filter"]["min_confidence"] == 70 and attrs["filter"]["seed"] == 42


def test_archive_gives_the_same_file_as_the_folder(features, tmp_path):
    folder, archive, _ = features
    from_folder = load_dataset(build(folder, tmp_path / "folder.h5"))
    from_archive = load_dataset(build(archive, tmp_path / "archive.h5"))
    assert (from_folder.x == from_archive.x).all() and (from_folder.y == from_archive.y).all()


@pytest.mark.filterwarnings("ignore:.*ties at the cutoff")
def test_short_class_gets_fewer_clips(features, tmp_path):
    folder, _, content = features
    with pytest.warns(UserWarning, match="fewer than 10 clips"):
        path = build_from_features(folder, META, tmp_path / "o.h5", num_classes=3,
                                   clips_per_class=10, test_fraction=0.6, progress=False)
    data = load_dataset(path)  # 4 train, then up to 6 test clips from 9, 7 and 5 kept clips
    assert data.y[data.train_idx].bincount().tolist() == [4, 4, 4]
    assert data.y[data.test_idx].bincount().tolist() == [5, 3, 1]


def test_too_few_classes_is_a_clear_error(features, tmp_path):
    with pytest.raises(DataError, match="only 5 candidate classes have usable clips, 6 are needed"):
        build_from_features(features[0], META, tmp_path / "o.h5", num_classes=6, progress=False)


def test_truncated_record_file_and_archive(features, tmp_path):
    folder, archive, _ = features
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.tfrecord").write_bytes((folder / FILES[0]).read_bytes()[:-50])
    with pytest.raises(DataError, match=r"x\.tfrecord: truncated TFRecord file"):
        build_from_features(broken, META, tmp_path / "o.h5", num_classes=3, progress=False)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[:-400])
    with pytest.raises(DataError, match="truncated"):
        build_from_features(cut, META, tmp_path / "o.h5", num_classes=3, progress=False)


def test_cli_builds_a_loadable_file_and_reports_errors_in_one_line(features, tmp_path, capsys):
    out = tmp_path / "cli.h5"
    status = data_main(["audioset", "--features", str(features[1]), "--meta", str(META),
                        "--out", str(out), "--num-classes", "3", "--clips-per-class", "5",
                        "--no-progress"])
    assert status == 0 and load_dataset(out).x.shape == (15, 10, 128)
    captured = capsys.readouterr()
    assert "15 clips, 3 classes" in captured.out
    assert captured.err == ("cl-rnn data: warning: 4 classes have >= 5 clips (ties at the cutoff); "
                            "keeping the first 3 in ontology order, as the study does\n")
    status = data_main(["audioset", "--features", str(tmp_path / "none.tar.gz"), "--meta", str(META)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert err.startswith("cl-rnn data: error: ") and "none.tar.gz: no such file" in err
