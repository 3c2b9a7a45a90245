"""Makes idle OpenMP threads sleep instead of spin; imported before LightGBM is loaded.

LightGBM's OpenMP threads busy-wait between parallel regions by default. On a shared two-core host
(every other process competing for the same cores) that spinning made training 10-20 times slower
in our measurements. The setting is read once, when the OpenMP runtime starts, so it must be in the
environment before `import lightgbm`; an explicit OMP_WAIT_POLICY from the operator still wins.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
