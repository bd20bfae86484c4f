"""Ray's environment defaults, set on import: every module of hpsearch that uses Ray imports this one before Ray.

Quiet output, no usage stats, results without the objective allowed (a pruned trial's last report has none), an
experiment snapshot every 2 s so a killed driver loses little, Ray's JSON and CSV result logs without its
TensorBoard one (which complains about the -inf of failed trials), and a trial's failure told in one line by
``hpsearch.ray_trials.SweepCallback`` instead of Ray's traceback.  A variable already set is left as it is.
"""
from __future__ import annotations

import os

for _name, _value in {"RAY_AIR_NEW_OUTPUT": "0", "RAY_USAGE_STATS_ENABLED": "0",
                      "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1", "TUNE_GLOBAL_CHECKPOINT_S": "2",
                      "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "TUNE_PRINT_ALL_TRIAL_ERRORS": "0"}.items():
    os.environ.setdefault(_name, _value)
