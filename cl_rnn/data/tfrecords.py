"""Streaming AudioSet's TFRecord files without TensorFlow.

A source is a ``.tar``/``.tar.gz`` archive (read as a stream, nothing extracted to disk), a
directory (every file below it whose name contains ``tfrecord``, in sorted path order) or one
TFRecord file.  Records are ``tf.train.SequenceExample`` protos, parsed with the protobuf classes
shipped by the ``tfrecord`` package.
"""
from __future__ import annotations

import struct
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
from tfrecord import example_pb2

from cl_rnn.data.store import DataError

try:  # the tfrecord package depends on crc32c; checking the length CRC catches corrupt files
    from crc32c import crc32c as _crc32c
except ImportError:  # pragma: no cover
    _crc32c = None


@dataclass
class Clip:
    member: str  # file (or archive member) the record came from
    record: int  # position of the record in that file
    labels: list[int]
    frames: list[bytes]  # one 128-byte embedding per second

    def embedding(self) -> np.ndarray:
        """The frames as uint8 (num_frames, 128)."""
        return np.frombuffer(b"".join(self.frames), dtype=np.uint8).reshape(len(self.frames), -1)


def _masked_crc(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(stream: BinaryIO, name: str) -> Iterator[bytes]:
    """The raw records of one TFRecord stream; DataError on a truncated or corrupt one."""
    index = 0
    while True:
        header = stream.read(12)
        if not header:
            return
        if len(header) < 12:
            raise DataError(f"{name}: truncated TFRecord file (record {index} header cut off)")
        length_bytes, (length_crc,) = header[:8], struct.unpack("<I", header[8:])
        if _crc32c is not None and _masked_crc(length_bytes) != length_crc:
            raise DataError(f"{name}: corrupt TFRecord file (bad length checksum at record {index})")
        (length,) = struct.unpack("<Q", length_bytes)
        data = stream.read(length)
        if len(data) < length or len(stream.read(4)) < 4:
            raise DataError(f"{name}: truncated TFRecord file (record {index} cut off)")
        yield data
        index += 1


def parse_clip(data: bytes, member: str, record: int) -> Clip:
    """Labels and per-second embeddings of one serialized SequenceExample."""
    try:
        example = example_pb2.SequenceExample.FromString(data)
    except Exception as err:  # protobuf raises its own DecodeError
        raise DataError(f"{member}: record {record} is not a SequenceExample ({err})") from None
    labels = list(example.context.feature["labels"].int64_list.value)
    frames = [f.bytes_list.value[0] if f.bytes_list.value else b""
              for f in example.feature_lists.feature_list["audio_embedding"].feature]
    return Clip(member, record, labels, frames)


def _records_of(stream: BinaryIO, member: str) -> Iterator[tuple[str, int, bytes]]:
    for index, data in enumerate(read_records(stream, member)):
        yield member, index, data


def _is_tar(path: Path) -> bool:
    return path.is_file() and tarfile.is_tarfile(path)


def iter_records(source: str | Path) -> Iterator[tuple[str, int, bytes]]:
    """(member, record index, serialized record) of a source, file by file.

    Directories are read in sorted path order; archives in their stored order (callers that
    need sorted order sort by (member, record index), see audioset.py).
    """
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir():
        files = sorted((p for p in path.rglob("*") if p.is_file() and "tfrecord" in p.name),
                       key=lambda p: str(p.relative_to(path)))
        for file in files:
            with open(file, "rb") as stream:
                yield from _records_of(stream, str(file.relative_to(path)))
    elif _is_tar(path):
        yield from _tar_records(path)
    else:
        with open(path, "rb") as stream:
            yield from _records_of(stream, path.name)


def _tar_records(path: Path) -> Iterator[tuple[str, int, bytes]]:
    try:
        with tarfile.open(path, mode="r|*") as archive:
            for member in archive:
                if member.isfile() and "tfrecord" in Path(member.name).name:
                    yield from _records_of(archive.extractfile(member), member.name)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DataError(f"{path}: truncated or corrupt archive ({err})") from None
