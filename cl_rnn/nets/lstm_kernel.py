"""The LSTM layer's recurrence in C (``lstm_kernel.c``), compiled on first use and loaded with ctypes.

Why: with 32 units and batch 64 a training step is bound by the number of tensor ops, and an
LSTM step needs about seven of them forward and six backward.  Here each direction of the whole
recurrence (the small h @ W_hh products and the gate arithmetic) is one call; the big matmuls
(input projection, dW_ih, dW_hh) stay with torch.  The kernel is built with the system C
compiler (``$CC``, default ``cc``; ``$CL_RNN_KERNEL_FLAGS`` adds flags) into
``$CL_RNN_CACHE_DIR/kernels`` (default ``~/.cache/cl-rnn/kernels``), keyed by a hash of source,
command and CPU, written atomically; about half a second, once per machine.  Once opened, a
small forward and backward are checked against the torch-ops reference (``lstm_ops.py``, ~3 ms).
Without a compiler, where it refuses the source, where the check fails, or with
``CL_RNN_NO_KERNEL=1``, ``load()`` returns None (with one warning, except for the last) and
``lstm.py`` runs the same recurrence in torch ops (slower, same results up to rounding).

A run alone may give the kernel several threads (``threads``): samples do not interact, so each
thread runs the whole recurrence for its own block of batch rows, and the numbers are one thread's.
It is built with OpenMP where the compiler has it (one plain build otherwise: one thread).

Fast math without the finite-math assumption (NaN must propagate); sigmoid and tanh are written
through ``exp`` of a clamped argument (no overflow: glibc's vector exp is slow on it, and the raw
0..255 inputs of the study saturate many gates).
"""
from __future__ import annotations

import ctypes
import hashlib
import itertools
import logging
import os
import platform
import shlex
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

from cl_rnn.nets import lstm_ops

log = logging.getLogger(__name__)
# -ffast-math's parts but -funsafe-math-optimizations: with gcc 12 that flag links crtfastmath.o
# into the library, whose constructor turns on flush-to-zero for the whole process at load time.
FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fassociative-math",
         "-freciprocal-math", "-fno-signed-zeros", "-fopenmp-simd", "-fPIC", "-shared"]
# Rows split across threads where the compiler has OpenMP.  The library then needs libgomp.so.1, the
# OpenMP runtime torch's CPU wheels load themselves: the loader hands it torch's copy (one thread pool).
THREADED = ["-fopenmp"]
ACT_CODES = {"tanh": 0, "relu": 1, "linear": 2}
MAX_HIDDEN = 64

DEFINES = {torch.float32: ["-DREAL=float", "-DEXP=expf", "-DSFX=_f32"],
           torch.float64: ["-DREAL=double", "-DEXP=exp", "-DSFX=_f64"]}  # one library per dtype
SUFFIX = {torch.float32: "_f32", torch.float64: "_f64"}
SOURCE = Path(__file__).with_name("lstm_kernel.c")

_loaded: dict = {}  # dtype -> CDLL, or None where it could not be built
_lock = threading.Lock()


def cache_dir() -> Path:
    root = os.environ.get("CL_RNN_CACHE_DIR") or Path.home() / ".cache" / "cl-rnn"
    return Path(root) / "kernels"


def _cpu_signature() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        flags = ""
    return platform.machine() + flags


def _compile_command(compiler: str, dtype: torch.dtype, threaded: bool = True) -> list[str]:
    """The compiler call, without its output path; ``$CL_RNN_KERNEL_FLAGS`` adds flags (e.g. -mcpu=native)."""
    extra = shlex.split(os.environ.get("CL_RNN_KERNEL_FLAGS", ""))
    return [compiler, *FLAGS, *(THREADED if threaded else []), *DEFINES[dtype], *extra, str(SOURCE), "-lm"]


def _build(target: Path, command: list[str]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        subprocess.run([*command, "-o", str(built)], check=True, capture_output=True, text=True, timeout=300)
        os.replace(built, target)


def load(dtype: torch.dtype = torch.float32):
    """The compiled kernel library for ``dtype``, or None where there is none (then torch ops are used)."""
    if dtype in _loaded:
        return _loaded[dtype]
    with _lock:
        if dtype not in _loaded:
            _loaded[dtype] = _build_and_open(dtype) if dtype in DEFINES else None
    return _loaded[dtype]


def preload() -> None:
    """Build and open the float32 kernel in a background thread (the compiler overlaps data loading)."""
    if torch.float32 not in _loaded:
        # not a daemon: a run refused at once waits for it at exit (a daemon thread still in torch code
        # when the interpreter shuts down aborts the process: exit status 134 instead of the refusal's)
        threading.Thread(target=load, name="cl-rnn-kernel", daemon=False).start()


def _build_and_open(dtype: torch.dtype):
    """Build (once per machine), open and check the kernel; on any failure one warning and None.
    Threaded first; where that fails (a compiler without OpenMP) the one-thread kernel."""
    if os.environ.get("CL_RNN_NO_KERNEL", "") not in ("", "0"):
        return None
    failures = []
    for threaded in (True, False):
        try:
            return _open_built(_compile_command(os.environ.get("CC", "cc"), dtype, threaded), dtype)
        except KernelUnavailable as err:
            failures.append(str(err))
    return _unavailable(failures[-1])


def _open_built(command: list[str], dtype: torch.dtype):
    """The checked library that ``command`` builds (cached); KernelUnavailable says why there is none."""
    key = hashlib.sha256("\n".join([SOURCE.read_text(), *command, _cpu_signature()]).encode()).hexdigest()[:16]
    target = cache_dir() / f"lstm{SUFFIX[dtype]}_{key}.so"
    refused = target.with_suffix(".failed")  # the compiler refused this source: don't try again every run
    remembered = f"remembered in {refused}: delete it to try again"
    try:
        if refused.exists():
            raise KernelUnavailable(f"{refused.read_text().strip()}; {remembered}")
        if not target.exists():
            _build(target, command)
        library = ctypes.CDLL(str(target))
        _declare(library, SUFFIX[dtype])
        _check_against_torch_ops(library, dtype)
    except subprocess.CalledProcessError as err:
        reason = _compiler_error(command[0], err.stderr)
        try:
            refused.write_text(reason + "\n")
        except OSError:  # a read-only cache: the next run asks the compiler again
            raise KernelUnavailable(reason) from None
        raise KernelUnavailable(f"{reason}; {remembered}") from None
    except (OSError, subprocess.SubprocessError) as err:
        raise KernelUnavailable(str(err).splitlines()[0] if str(err) else type(err).__name__) from None
    return library


class KernelUnavailable(Exception):
    """The kernel cannot be used here (the compiler refused it, or it computes something else)."""


def _unavailable(reason: str) -> None:
    log.warning("LSTM C kernel unavailable (%s); using torch ops (slower, same results up to rounding)", reason)


def _compiler_error(compiler: str, stderr: str) -> str:
    lines = [line for line in (stderr or "").splitlines() if line.strip()]
    first = next((line for line in lines if "error" in line), lines[0] if lines else "no message")
    return f"{compiler} failed: {first.strip()}"


def _check_against_torch_ops(library, dtype: torch.dtype) -> None:
    """Raise KernelUnavailable unless a small forward and backward equal the torch-ops reference, and
    with the rows split between two threads equal one thread's bit for bit.

    A kernel built by a compiler or for a CPU nobody tested must not train silently wrong.  Its own
    generator: the check runs in ``preload``'s thread and must not move the run's random streams.
    """
    gen = torch.Generator().manual_seed(0)
    steps, batch, hidden = 3, 17, 9  # 17 and 9 leave remainders in the kernel's tiles and blocks
    proj, d_hs = (torch.randn(steps, batch, n, generator=gen, dtype=dtype) for n in (4 * hidden, hidden))
    w_hh, b_ih, b_hh = (torch.randn(4 * hidden, *shape, generator=gen, dtype=dtype) for shape in ((hidden,), (), ()))
    tolerance = {"rtol": 1e-3, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 1e-9, "atol": 1e-10}
    for act, gain in itertools.product(ACT_CODES, (None, torch.rand(hidden, generator=gen, dtype=dtype) + 0.5)):
        expected = [proj + b_ih + b_hh, *(proj.new_empty(steps, batch, hidden) for _ in range(3))]
        lstm_ops.forward_ops(*expected[:1], w_hh, gain, act, *expected[1:])
        expected.append(lstm_ops.backward_ops(*expected[:3], w_hh, gain, act, d_hs).permute(2, 0, 1))
        got = [proj.clone(), *(torch.empty_like(t) for t in expected[1:4])]
        forward(library, *got[:1], w_hh, b_ih, b_hh, gain, act, *got[1:])
        got.append(backward(library, *got[:3], w_hh, gain, act, d_hs))
        split = [proj.clone(), *(torch.empty_like(t) for t in expected[1:4])]
        forward(library, *split[:1], w_hh, b_ih, b_hh, gain, act, *split[1:], threads=2)
        split.append(backward(library, *split[:3], w_hh, gain, act, d_hs, threads=2))
        for name, a, b, c in zip(("gates", "cells", "act(c)", "h", "gradients"), got, expected, split):
            if not torch.allclose(a, b, **tolerance):
                raise KernelUnavailable(f"its {name} differ from torch ops by {(a - b).abs().max().item():.3g} "
                                        f"({act}, {'with' if gain is not None else 'no'} gain)")
            if not torch.equal(a, c):
                raise KernelUnavailable(f"its {name} differ with the rows split between two threads")


def _declare(library, suffix: str) -> None:
    p, i = ctypes.c_void_p, ctypes.c_int
    getattr(library, "lstm_forward" + suffix).argtypes = [i, i, i, p, p, p, p, p, i, p, p, p, i]
    getattr(library, "lstm_forward" + suffix).restype = None
    getattr(library, "lstm_backward" + suffix).argtypes = [i, i, i, p, p, p, p, p, i, p, p, p, p, i]
    getattr(library, "lstm_backward" + suffix).restype = None


def usable(library, x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor,
           b_hh: torch.Tensor, gain: torch.Tensor | None) -> bool:
    """The kernel handles CPU float32/float64 tensors of one dtype, for layers of up to 64 units.

    Beyond 64 units its recurrent products stream W_hh from memory once per sample, and the
    per-step matmuls of the torch-ops path are faster (measured: equal at 128 units, 2x at 256).
    """
    if library is None or w_hh.shape[1] > MAX_HIDDEN or x.dtype not in SUFFIX:
        return False
    return all(t is None or (t.device.type == "cpu" and t.dtype == x.dtype) for t in (x, w_ih, w_hh, b_ih, b_hh, gain))


def _ptr(tensor: torch.Tensor | None):
    return None if tensor is None else tensor.data_ptr()


def forward(library, acts, w_hh, b_ih, b_hh, gain, act, cells, squashed, hs, threads: int = 1) -> None:
    """In place: ``acts`` (T, N, 4H) input projections (without bias) -> activations; fills cells, squashed, hs.
    ``threads``: the batch rows split between that many threads (the same numbers)."""
    steps, batch, hidden = cells.shape
    w_t = w_hh.t().contiguous()
    b_ih, b_hh = b_ih.contiguous(), b_hh.contiguous()
    gain = None if gain is None else gain.contiguous()
    getattr(library, "lstm_forward" + SUFFIX[acts.dtype])(
        steps, batch, hidden, _ptr(acts), _ptr(w_t), _ptr(b_ih), _ptr(b_hh), _ptr(gain), ACT_CODES[act],
        _ptr(cells), _ptr(squashed), _ptr(hs), threads)


def backward(library, acts, cells, squashed, w_hh, gain, act, d_hs, threads: int = 1) -> torch.Tensor:
    """Gradients of the preactivations, gate-major (4H, T, N), from the gradients of every step's output."""
    steps, batch, hidden = cells.shape
    d_hs = d_hs.contiguous()
    w_hh = w_hh.contiguous()
    gain = None if gain is None else gain.contiguous()
    d_acts = torch.empty_like(acts)
    d_acts_t = acts.new_empty(4 * hidden, steps, batch)
    scratch_c = acts.new_empty(batch, hidden)
    getattr(library, "lstm_backward" + SUFFIX[acts.dtype])(
        steps, batch, hidden, _ptr(acts), _ptr(cells), _ptr(squashed), _ptr(w_hh), _ptr(gain), ACT_CODES[act],
        _ptr(d_hs), _ptr(d_acts), _ptr(d_acts_t), _ptr(scratch_c), threads)
    return d_acts_t
