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

Not modelled: the vision encoder's own activations during that profiling pass, and
families whose tokens per image rigsize does not know (``Architecture.max_image_tokens``
0): both read as 0 here.
"""

from __future__ import annotations

from rigsize.model.architecture import Architecture

DEFAULT_IMAGE_LIMIT = 999     # vLLM V1 MultiModalConfig.limit_per_prompt default per modality
EMBEDDING_BITS = 16           # the encoder outputs in the model dtype (bf16/fp16 here)


def encoder_cache_bytes(arch: Architecture, max_num_batched_tokens: int, max_num_seqs: int,
                        max_model_len: int, image_limit: int | None = None) -> int:
    """Bytes of the dummy image embeddings vLLM's profiling run holds (0 for text-only
    models, an image limit of 0, or an unknown tokens-per-image rule)."""
    per_item = arch.max_image_tokens
    limit = DEFAULT_IMAGE_LIMIT if image_limit is None else image_limit
    if not per_item or not limit:
        return 0
    budget = max(max_num_batched_tokens, per_item)
    per_prompt = max(1, min(limit, max_model_len // per_item))
    items = max(1, min(budget // per_item, max_num_seqs * per_prompt))
    return items * per_item * arch.hidden_size * EMBEDDING_BITS // 8
