"""AudioSet's metadata files and the study's candidate classes (spec 1.2, step 1).

Candidates, in ``ontology.json`` order: the class's name appears in ``confidence_data.csv``, it is
not restricted (no "abstract"/"blacklist"), it is a leaf, and its rater confidence is >= 70.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from cl_rnn.data.store import DataError

META_FILES = ("class_labels_indices.csv", "confidence_data.csv", "ontology.json")


@dataclass(frozen=True)
class AudioSetClass:
    index: int  # row in class_labels_indices.csv: the label id used in the TFRecords
    mid: str  # ontology id, e.g. /m/09x0r
    name: str


def parse_confidence(path: Path) -> dict[str, int | None]:
    """Class name -> rater confidence (None when the file has "-" instead of a percentage).

    Whitespace-separated lines; the name is the tokens before the first token that contains
    "%" or is exactly "-"; the confidence is the integer of the last token containing "%".
    """
    confidence: dict[str, int | None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        tokens = line.split()
        stop = next((i for i, t in enumerate(tokens) if "%" in t or t == "-"), len(tokens))
        if stop == 0:
            continue
        percents = [t for t in tokens if "%" in t]
        value = int(percents[-1].replace("%", "")) if percents else None
        confidence[" ".join(tokens[:stop])] = value
    return confidence


def parse_indices(path: Path) -> dict[str, int]:
    """Display name -> AudioSet index (row of class_labels_indices.csv, header skipped)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    return {row[2]: int(row[0]) for row in rows if len(row) >= 3}


def candidate_classes(meta_dir: str | Path, min_confidence: int = 70) -> list[AudioSetClass]:
    """The study's candidate classes in ontology order."""
    meta = Path(meta_dir)
    for name in META_FILES:
        if not (meta / name).is_file():
            raise DataError(f"{meta / name}: no such file (--meta must hold {', '.join(META_FILES)})")
    try:
        ontology = json.loads((meta / "ontology.json").read_text(encoding="utf-8"))
        confidence = parse_confidence(meta / "confidence_data.csv")
        indices = parse_indices(meta / "class_labels_indices.csv")
    except (ValueError, KeyError, IndexError) as err:
        raise DataError(f"{meta}: unreadable AudioSet metadata ({err})") from None
    candidates = []
    for entry in ontology:
        name = entry["name"]
        conf = confidence.get(name)
        if (name in confidence and not entry.get("restrictions") and not entry.get("child_ids")
                and conf is not None and conf >= min_confidence and name in indices):
            candidates.append(AudioSetClass(indices[name], entry["id"], name))
    return candidates
