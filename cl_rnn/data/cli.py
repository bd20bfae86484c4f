"""``cl-rnn data surrogate | import-pickle | export-pickle | audioset``: build, import or export a dataset."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Sequence

from cl_rnn.config import OneLineParser
from cl_rnn.data.store import DataError, load_dataset


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="cl-rnn data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    surrogate = commands.add_parser("surrogate", help="write the deterministic surrogate dataset")
    surrogate.add_argument("--out", default=None,
                           help="output file (default: the cache used by runs without --data)")
    surrogate.add_argument("--seed", type=int, default=0)
    surrogate.add_argument("--clips-per-class", type=int, default=1000)
    surrogate.add_argument("--num-classes", type=int, default=100)
    legacy = commands.add_parser("import-pickle", help="convert the study's released pickle")
    legacy.add_argument("file", help="pickle holding [x, y, train_ind, test_ind]")
    legacy.add_argument("--out", default="split_audioset.h5")
    export = commands.add_parser("export-pickle", help="write a dataset in the study's pickle format")
    export.add_argument("file", help="a cl-rnn dataset file (.h5)")
    export.add_argument("--out", required=True, help="the pickle to write [x, y, train_ind, test_ind]")
    audioset = commands.add_parser("audioset", help="build from AudioSet's released features")
    audioset.add_argument("--features", required=True,
                          help="features.tar.gz, a folder of TFRecord files, or one TFRecord file")
    audioset.add_argument("--meta", required=True, help="folder with class_labels_indices.csv, "
                          "confidence_data.csv and ontology.json")
    audioset.add_argument("--out", default="split_audioset.h5")
    audioset.add_argument("--num-classes", type=int, default=100)
    audioset.add_argument("--clips-per-class", type=int, default=1000)
    audioset.add_argument("--test-fraction", type=float, default=0.2)
    audioset.add_argument("--seed", type=int, default=42)
    audioset.add_argument("--min-confidence", type=int, default=70)
    audioset.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def _run(args: argparse.Namespace) -> tuple[Path, Path]:
    """Does the command; returns (the file written, the dataset file it holds)."""
    if args.command == "surrogate":
        from cl_rnn.data.surrogate import default_surrogate_path, write_surrogate

        out = Path(args.out) if args.out else default_surrogate_path()
        if args.out is None and (args.seed, args.clips_per_class, args.num_classes) != (0, 1000, 100):
            raise DataError(f"{out}: the default cache holds the default surrogate only; "
                            "pass --out for other settings")
        written = write_surrogate(out, args.seed, args.clips_per_class, args.num_classes)
        return written, written
    if args.command == "import-pickle":
        from cl_rnn.data.legacy import import_pickle

        written = import_pickle(args.file, args.out)
        return written, written
    if args.command == "export-pickle":
        from cl_rnn.data.legacy import export_pickle

        return export_pickle(args.file, args.out), Path(args.file)
    from cl_rnn.data.audioset import build_from_features

    written = build_from_features(args.features, args.meta, args.out, args.num_classes,
                                  args.clips_per_class, args.test_fraction, args.seed,
                                  args.min_confidence, progress=not args.no_progress)
    return written, written


def _show_warning(message: Warning | str, *_details: object) -> None:
    print(f"cl-rnn data: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status 0 on success, 2 (one error line, no traceback) on bad input."""
    args = _parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            out, dataset_file = _run(args)
        dataset = load_dataset(dataset_file)
    except (DataError, ValueError) as err:
        print(f"cl-rnn data: error: {err}", file=sys.stderr)
        return 2
    counts = dataset.y.bincount()
    print(f"{out}: {len(dataset.y)} clips, {len(counts)} classes "
          f"({int(counts.min())}-{int(counts.max())} per class), "
          f"{len(dataset.train_idx)} train / {len(dataset.test_idx)} test, "
          f"source {dataset.attrs.get('source')}")
    return 0
