"""Hard caps for absurd values, in one place.

Values beyond these are almost certainly typos (``--seq 1e12``) and would make the
math meaningless or slow.  Messages quote the cap.  The caps are generous: they sit
well above anything built so far (largest published dense model 1.0e12-scale
parameters, longest served contexts 10M tokens, largest clusters ~1e5 GPUs).
"""

from __future__ import annotations

MAX_PARAMS = 100e12          # 100T parameters
MAX_CONTEXT = 100_000_000    # tokens in one sequence
MAX_GPUS = 1_000_000
# plan --max-gpus: the search lists every GPU count up to it for each GPU (one block of
# layouts and formats each), so its time grows with the cap (1e6 ran for minutes).  The
# largest training job with a published layout ran on 16,384 H100s (Llama 3 405B;
# Dubey et al. 2024, "The Llama 3 Herd of Models", sec. 3.3); a given larger count is
# sized by estimate --gpus N (up to MAX_GPUS), which does not search.
MAX_PLAN_GPUS = 16_384
MAX_BATCH = 10_000_000       # sequences
MAX_LAYERS = 10_000           # the deepest published decoders have under 200 layers
MAX_HIDDEN = 1_000_000
MAX_WIDTH = 10_000_000       # any single matrix dimension (intermediate sizes, ranks)
MAX_VOCAB = 100_000_000
MAX_EXPERTS = 1_000_000
MAX_TOKENS = 1e18            # training tokens
# --efficiency KEY_s=...: the time overrides (per step, per collective, per request, per
# layer).  The fitted values in data/efficiency.toml reach 0.39 s (a TTFT overhead); no real
# engine overhead is seconds per step, and 1e9 s would make every answer meaningless.
MAX_EFFICIENCY_TIME_S = 10.0
