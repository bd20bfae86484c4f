"""The chunked hypernetwork (``--nh_hnet_type=chunked_hmlp``): an MLP that writes the main net's weights.

One MLP maps ``[chunk embedding, task embedding]`` through ``--nh_hmlp_arch`` hidden layers
(``--nh_hnet_net_act``) to one chunk of ``--nh_chmlp_chunk_size`` weights.  There are
ceil(W / chunk size) chunk embeddings; the chunks, concatenated, are cut to the W main-net weights.
All chunks (of one or several tasks) are one batched MLP pass: the inputs are stacked as a batch.

Parameters, as flat leaves: the MLP's weights (stored (in, out): with the study's 10-unit layers and
2,000-weight chunks, ``addmm`` in that layout runs its backward twice as fast) and biases, the chunk embeddings
(C, ``--nh_chunk_emb_size``) and one task embedding (``--nh_cond_emb_size``) per task.
Init: MLP weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (torch's ``Linear`` default),
chunk embeddings N(0, ``--std_normal_emb``^2), task embeddings N(0, ``--std_normal_temb``^2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cl_rnn.config import Config
from cl_rnn.rules import int_list

HNET_ACTS = {"relu": torch.relu, "tanh": torch.tanh, "linear": lambda x: x, "sigmoid": torch.sigmoid,
             "elu": F.elu, "leakyrelu": F.leaky_relu}


@dataclass(frozen=True)
class HnetSpec:
    num_weights: int                    # W: main-net weights to produce
    num_tasks: int = 10
    hidden: tuple[int, ...] = (50, 50)
    chunk_size: int = 1000
    chunk_emb_size: int = 32
    task_emb_size: int = 32
    act: str = "relu"
    bias: bool = True
    dropout: float = -1.0               # -1: off
    std_chunk_emb: float = 1.0
    std_task_emb: float = 1.0

    @classmethod
    def from_config(cls, config: Config, num_weights: int) -> "HnetSpec":
        return cls(num_weights=num_weights, num_tasks=config.num_tasks,
                   hidden=tuple(int_list(config.nh_hmlp_arch, "nh_hmlp_arch")),
                   chunk_size=config.nh_chmlp_chunk_size, chunk_emb_size=config.nh_chunk_emb_size,
                   task_emb_size=config.nh_cond_emb_size, act=config.nh_hnet_net_act,
                   bias=not config.nh_hnet_no_bias, dropout=config.nh_hnet_dropout_rate,
                   std_chunk_emb=config.std_normal_emb, std_task_emb=config.std_normal_temb)

    @property
    def num_chunks(self) -> int:
        return math.ceil(self.num_weights / self.chunk_size)


class ChunkedHypernet:
    """Holds the hypernetwork's leaves; ``generate(tasks)`` returns (len(tasks), W) main-net weights.

    The MLP and the chunk embeddings live in one flat leaf, ``shared`` (pieces are views of it): one
    tensor for Adam instead of one per layer (the optimizer's per-tensor overhead is what a step of
    this small network would otherwise spend its time on).  Task embeddings are separate leaves.
    """

    def __init__(self, spec: HnetSpec, device: torch.device | str = "cpu"):
        if spec.act not in HNET_ACTS:
            raise ValueError(f"--nh_hnet_net_act: {spec.act!r} is not one of {sorted(HNET_ACTS)}")
        self.spec = spec
        self.shapes: list[tuple[int, ...]] = []
        size = spec.chunk_emb_size + spec.task_emb_size
        for width in (*spec.hidden, spec.chunk_size):
            self.shapes += [(size, width), (width,)] if spec.bias else [(size, width)]
            size = width
        self.shapes.append((spec.num_chunks, spec.chunk_emb_size))
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self.shared = torch.empty(sum(self.sizes), device=device)
        pieces = self._pieces(self.shared)
        per_layer = 2 if spec.bias else 1
        for k in range(len(pieces) - 1):
            bound = 1.0 / math.sqrt(pieces[k - k % per_layer].shape[0])  # the layer's fan-in, for its bias too
            pieces[k].uniform_(-bound, bound)
        pieces[-1].normal_(0.0, spec.std_chunk_emb)
        self.shared.requires_grad_(True)
        self.task_embs = [(torch.randn(spec.task_emb_size, device=device) * spec.std_task_emb).requires_grad_(True)
                          for _ in range(spec.num_tasks)]

    def _pieces(self, flat: torch.Tensor) -> list[torch.Tensor]:
        return [piece.view(shape) for piece, shape in zip(flat.split(self.sizes), self.shapes)]

    @property
    def chunk_embs(self) -> torch.Tensor:
        """(num_chunks, chunk_emb_size), a view of ``shared``."""
        return self._pieces(self.shared)[-1]

    def all_parameters(self) -> list[torch.Tensor]:
        """MLP, chunk embeddings and every task's embedding (what the compression ratio counts)."""
        return [self.shared, *self.task_embs]

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.all_parameters())

    def generate(self, tasks: list[int], dropout: bool = False) -> torch.Tensor:
        """Main-net weights (len(tasks), W) for each task: one MLP pass over all their chunks."""
        return self.generate_chunks(tasks, dropout)[:, :self.spec.num_weights]

    def generate_chunks(self, tasks: list[int], dropout: bool = False) -> torch.Tensor:
        """The uncut output (len(tasks), num_chunks * chunk_size): ``generate`` before the cut to W."""
        features, weight, bias = self.hidden(tasks, dropout)
        return affine(features, weight, bias).view(len(tasks), -1)

    def hidden(self, tasks: list[int], dropout: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One MLP pass up to the last layer over every chunk of ``tasks``, task by task.

        Returns the last layer's inputs (len(tasks) * num_chunks, last hidden size) and its weight
        (in, chunk_size) and bias: callers apply it to row blocks of the (small) features, since
        slicing its (large) output instead costs a zero-filled full-size gradient per slice.
        """
        spec = self.spec
        chunks = spec.num_chunks
        *weights, chunk_embs = self._pieces(self.shared)
        layers = list(zip(weights[::2], weights[1::2])) if spec.bias else [(w, None) for w in weights]
        task_embs = torch.stack([self.task_embs[t] for t in tasks])                      # (K, E_t)
        inputs = torch.cat([chunk_embs.expand(len(tasks), chunks, spec.chunk_emb_size),
                            task_embs.unsqueeze(1).expand(len(tasks), chunks, spec.task_emb_size)], 2)
        h = inputs.view(len(tasks) * chunks, -1)
        act = HNET_ACTS[spec.act]
        for weight, bias in layers[:-1]:
            h = act(affine(h, weight, bias))
            if dropout and spec.dropout > 0:
                h = F.dropout(h, spec.dropout, training=True)
        return (h, *layers[-1])


def affine(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``h @ weight + bias`` for a weight stored (in, out)."""
    return h.mm(weight) if bias is None else torch.addmm(bias, h, weight)
