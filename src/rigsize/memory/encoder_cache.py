"""vLLM's encoder cache: the image embeddings its memory profiling holds for a
vision-language model, which the KV cache budget then leaves room for.

vLLM v1 (read in public copies of ``vllm/v1/core/encoder_cache_manager.py``
``compute_mm_encoder_budget``, ``vllm/v1/worker/utils.py`` ``MultiModalBudget`` and
``gpu_model_runner.py`` ``profile_run``; code-index ids 58830105416, 47803986, 53472016009;
as of 2026-12-01, the exact vLLM version of those copies unknown):

- T = the most tokens one image can become (the processor at its largest size);
- the encoder budget is ``max(max_num_batched_tokens, T)`` (both the compute budget and
  the cache size default to ``max_num_batched_tokens``, raised to one item's T);
- ``profile_run`` encodes ``max(1, min(budget // T, max_num_seqs x items per prompt))``
  dummy images of T tokens (items per prompt: ``max(1, min(limit, max_model_len // T))``,
  the image limit 999 by default in V1, ``MultiModalConfig.limit_per_prompt``) and keeps
  their outputs, T x hidden_size each in the model dtype, while it measures the peak;
- a text-only deployment (image limit 0) has no encoder budget: 0.

The tower's own activations in that pass (``encoder_activation_bytes``): vLLM measures the
torch peak over the whole ``profile_run`` (``memory_profiling`` around it,
vllm/v1/worker/gpu_worker.py ``determine_available_memory``: non_kv_cache_memory =
total_consumed + transient_peak_headroom; 0.33.0 wheel), and ``profile_run`` runs
``embed_multimodal`` on the dummy batch before the text ``_dummy_run``, keeping only the
outputs (gpu_model_runner.py, 0.33.0).  So the run's peak is the larger of the tower's
working set and the cache plus the text forward's, which ``memory.per_gpu`` charges as
activations = max(forward, tower - cache).  The tower's working set is estimated
(``model.vision.vision_peak``); vLLM prints the measured figure.

Not modelled: families whose tokens per image rigsize does not know
(``Architecture.max_image_tokens`` 0): 0 here.
"""

from __future__ import annotations

import math

from rigsize.model.architecture import Architecture

DEFAULT_IMAGE_LIMIT = 999     # vLLM V1 MultiModalConfig.limit_per_prompt default per modality
EMBEDDING_BITS = 16           # the encoder outputs in the model dtype (bf16/fp16 here)


def encoder_cache_bytes(arch: Architecture, max_num_batched_tokens: int, max_num_seqs: int,
                        max_model_len: int, image_limit: int | None = None) -> int:
    """Bytes of the dummy image embeddings vLLM's profiling run holds (0 for text-only
    models, an image limit of 0, or an unknown tokens-per-image rule)."""
    items = _profiled_items(arch, max_num_batched_tokens, max_num_seqs, max_model_len, image_limit)
    return items * arch.max_image_tokens * arch.hidden_size * EMBEDDING_BITS // 8


def _profiled_items(arch: Architecture, max_num_batched_tokens: int, max_num_seqs: int, max_model_len: int,
                    image_limit: int | None) -> int:
    """Images of the largest size in the profiling batch (0: no encoder budget)."""
    per_item = arch.max_image_tokens
    limit = DEFAULT_IMAGE_LIMIT if image_limit is None else image_limit
    if not per_item or not limit:
        return 0
    budget = max(max_num_batched_tokens, per_item)
    per_prompt = max(1, min(limit, max_model_len // per_item))
    return max(1, min(budget // per_item, max_num_seqs * per_prompt))


def encoder_activation_bytes(arch: Architecture, tp: int, max_num_batched_tokens: int, max_num_seqs: int,
                             max_model_len: int, image_limit: int | None = None) -> int:
    """The tower's transient peak on the profiling batch, on one tp rank: the batch's
    positions x (the elements every rank holds + those split over tp), in the model dtype
    (``Architecture.max_image_peak``); 0 where there is no encoder budget."""
    items = _profiled_items(arch, max_num_batched_tokens, max_num_seqs, max_model_len, image_limit)
    positions, replicated, sharded = arch.max_image_peak
    return math.ceil(items * positions * (replicated + sharded / tp) * EMBEDDING_BITS / 8)
