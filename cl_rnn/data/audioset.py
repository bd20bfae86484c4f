"""Split AudioSet from AudioSet's released embedding features: the study's "Kemker" selection.

Exactly spec 1.2, streamed so that AudioSet's ~2M clips are never all in memory:

1. pass 1 reads every record and notes, for clips with exactly ``FRAMES`` embeddings, which
   candidate classes (audioset_meta.candidate_classes) they carry; counts use the clips with
   exactly one candidate label;
2. the ``num_classes`` classes with most clips are chosen (cutoff = the num_classes-th largest
   count; ties beyond it are cut to the first ones in candidate order, with a warning); a clip is
   kept if exactly one of its labels is a chosen class;
3. per class, in stream order (sorted file/member name, then record position), the kept clips are
   shuffled with the study's seed (np.random.seed(42) then np.random.shuffle per class): the first
   800 go to train, the next 200 to test;
4. pass 2 reads the records again and materialises only the chosen clips.

Output: all training clips class by class, then all test clips, with provenance attributes.
"""
from __future__ import annotations

import sys
import warnings
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cl_rnn.data.audioset_meta import AudioSetClass, candidate_classes
from cl_rnn.data.store import FEATURES, STEPS, DataError, write_dataset
from cl_rnn.data.tfrecords import iter_records, parse_clip

FRAMES, EMBEDDING_BYTES = STEPS, FEATURES  # a clip in the dataset format: 10 one-second embeddings


@dataclass
class _Scan:
    """What pass 1 keeps, compactly: one (clip key, candidate position) pair per candidate label
    of every clip with FRAMES frames.  A clip key is member id << 32 | record position."""
    members: dict[str, int] = field(default_factory=dict)  # name -> id, in reading order
    keys: array = field(default_factory=lambda: array("q"))
    labels: array = field(default_factory=lambda: array("i"))
    records: int = 0

    def key(self, member: str, record: int) -> int:
        return (self.members.setdefault(member, len(self.members)) << 32) | record

    def stream_rank(self, keys: np.ndarray) -> np.ndarray:
        """Sort keys giving stream order: sorted member name, then record position."""
        names = sorted(self.members, key=self.members.get)
        rank_of_id = np.argsort(np.argsort(np.array(names, dtype=object)))
        return (rank_of_id[keys >> 32].astype(np.int64) << 32) | (keys & 0xFFFFFFFF)


def _scan(features: Path, candidates: list[AudioSetClass], progress: bool) -> _Scan:
    position = {c.index: i for i, c in enumerate(candidates)}
    scan = _Scan()
    for member, record, data in tqdm(iter_records(features), desc="pass 1/2 (select)",
                                     unit=" clips", file=sys.stderr, disable=not progress):
        scan.records += 1
        clip = parse_clip(data, member, record)
        if len(clip.frames) != FRAMES:
            continue
        labels = {position[label] for label in clip.labels if label in position}
        key = scan.key(member, record)
        for label in sorted(labels):
            scan.keys.append(key)
            scan.labels.append(label)
    return scan


def _single_label(keys: np.ndarray) -> np.ndarray:
    """Mask of the pairs whose clip has exactly one pair."""
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return counts[inverse] == 1


def choose_classes(counts: np.ndarray, num_classes: int, source: Path) -> list[int]:
    """Candidate positions of the chosen classes, in candidate order (spec 1.2, step 3)."""
    if np.count_nonzero(counts) < num_classes:
        raise DataError(f"{source}: only {np.count_nonzero(counts)} candidate classes have "
                        f"usable clips, {num_classes} are needed")
    cutoff = np.sort(counts)[::-1][num_classes - 1]
    chosen = [int(i) for i in np.flatnonzero(counts >= cutoff)]
    if len(chosen) > num_classes:
        warnings.warn(f"{len(chosen)} classes have >= {cutoff} clips (ties at the cutoff); "
                      f"keeping the first {num_classes} in ontology order, as the study does", stacklevel=2)
    return chosen[:num_classes]


def _kept_clips(scan: _Scan, chosen: list[int], num_candidates: int) -> list[np.ndarray]:
    """Per chosen class, the keys of its kept clips (exactly one chosen label), stream order."""
    keys, labels = np.asarray(scan.keys, dtype=np.int64), np.asarray(scan.labels, dtype=np.int64)
    label_of = np.full(num_candidates, -1)
    label_of[chosen] = np.arange(len(chosen))
    in_chosen = label_of[labels] >= 0
    keys, labels = keys[in_chosen], label_of[labels[in_chosen]]
    single = _single_label(keys)
    keys, labels = keys[single], labels[single]
    order = np.argsort(scan.stream_rank(keys), kind="stable")
    keys, labels = keys[order], labels[order]
    return [keys[labels == c] for c in range(len(chosen))]


def _split(per_class: list[np.ndarray], clips_per_class: int, test_fraction: float,
           seed: int) -> tuple[dict[int, int], np.ndarray, int]:
    """Slots of the chosen clips (train class by class, then test), labels, train count."""
    n_test = int(round(clips_per_class * test_fraction))
    n_train = clips_per_class - n_test
    rng = np.random.RandomState(seed)  # same stream as the study's np.random.seed + shuffle
    train, test = [], []
    for label, keys in enumerate(per_class):
        order = np.arange(len(keys))
        rng.shuffle(order)
        train += [(int(keys[i]), label) for i in order[:n_train]]
        test += [(int(keys[i]), label) for i in order[n_train:n_train + n_test]]
    slots = {key: slot for slot, (key, _) in enumerate(train + test)}
    labels = np.array([label for _, label in train + test], dtype=np.int64)
    return slots, labels, len(train)


def _materialise(features: Path, scan: _Scan, slots: dict[int, int], progress: bool
                 ) -> np.ndarray:
    x = np.empty((len(slots), FRAMES, EMBEDDING_BYTES), dtype=np.uint8)
    filled = 0
    for member, record, data in tqdm(iter_records(features), desc="pass 2/2 (read)", total=scan.records,
                                     unit=" clips", file=sys.stderr, disable=not progress):
        slot = slots.get(scan.key(member, record))
        if slot is None:
            continue
        embedding = parse_clip(data, member, record).embedding()
        if embedding.shape != (FRAMES, EMBEDDING_BYTES):
            raise DataError(f"{member}: record {record} has embeddings of shape {embedding.shape}, "
                            f"expected ({FRAMES}, {EMBEDDING_BYTES})")
        x[slot] = embedding
        filled += 1
    if filled != len(slots):
        raise DataError(f"{features}: changed between passes ({filled} of {len(slots)} clips found)")
    return x


def build_from_features(features: str | Path, meta_dir: str | Path, dst: str | Path,
                        num_classes: int = 100, clips_per_class: int = 1000,
                        test_fraction: float = 0.2, seed: int = 42, min_confidence: int = 70,
                        progress: bool = True) -> Path:
    """Build the Split-AudioSet HDF5 file from AudioSet features; returns dst."""
    features, dst = Path(features), Path(dst)
    candidates = candidate_classes(meta_dir, min_confidence)
    if not features.exists():
        raise DataError(f"{features}: no such file or directory")
    scan = _scan(features, candidates, progress)
    keys, labels = np.asarray(scan.keys, dtype=np.int64), np.asarray(scan.labels, dtype=np.int64)
    counts = np.bincount(labels[_single_label(keys)], minlength=len(candidates))
    chosen = choose_classes(counts, num_classes, features)
    per_class = _kept_clips(scan, chosen, len(candidates))
    short = [candidates[c].name for c, k in zip(chosen, per_class) if len(k) < clips_per_class]
    if short:
        warnings.warn(f"{len(short)} classes have fewer than {clips_per_class} clips "
                      f"(e.g. {short[0]!r}): they get fewer training/test clips", stacklevel=2)
    slots, y, n_train = _split(per_class, clips_per_class, test_fraction, seed)
    x = _materialise(features, scan, slots, progress)
    classes = [candidates[c] for c in chosen]
    attrs = {
        "source": "audioset", "features": str(features), "meta_dir": str(meta_dir),
        "class_ids": [c.mid for c in classes], "class_names": [c.name for c in classes],
        "audioset_indices": [c.index for c in classes], "num_classes": len(classes),
        "clips_kept_per_class": [len(k) for k in per_class], "records_read": scan.records,
        "filter": {"min_confidence": min_confidence, "leaf_classes_only": True,
                   "unrestricted_only": True, "frames": FRAMES, "num_classes": num_classes,
                   "clips_per_class": clips_per_class, "test_fraction": test_fraction,
                   "seed": seed, "candidate_classes": len(candidates)},
    }
    write_dataset(dst, x, y, np.arange(n_train), np.arange(n_train, len(y)), attrs)
    return dst
