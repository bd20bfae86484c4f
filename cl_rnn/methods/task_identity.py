"""Task identity as input (``--input_task_identity``): a one-hot task id appended to every input step.

It changes what the network sees (``cl_rnn.nets.rnn.RecurrentNet.with_task_identity``), not how it
learns, so it combines with every method; the study pairs it with Online EWC.
"""
from __future__ import annotations

from cl_rnn.methods.registry import MethodSpec

SPEC = MethodSpec("task_identity", flag="input_task_identity", role="input",
                  summary="a one-hot task id appended to every input step")
