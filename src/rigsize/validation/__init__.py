"""Validation against measurements nobody here produced: serving (AIConfigurator's runs,
published throughputs, serving_more.csv), training runs, fine-tuning peak memory, and
vLLM start-up logs.  Each source is a module; this package re-exports what callers use.

Sources (packaged under ``data/validation``, each with its attribution and its fit /
reserved split in its README).  ``rigsize validate`` prints case, measured, predicted
and error per source and per class, fitted and reserved rows apart.
"""

from rigsize.validation.common import HELD_OUT_MODELS, TARGETS, Row, log_error, summarize, summarize_classes
from rigsize.validation.finetune import (
    FINETUNE_TARGET,
    finetune_memory,
    finetune_rows,
    predicted_bytes,
    published_bytes,
)
from rigsize.validation.serving import (
    BENCH_WAVES,
    MAX_LOAD_CAP,
    ServingCase,
    predict_serving,
    published_rows,
    published_throughput,
    serving_cases,
    serving_rows,
)
from rigsize.validation.training import (
    TRAINING_FIT_PREFIX,
    WHOLE_RUN_BATCH_TOKENS,
    WHOLE_RUN_GPUS,
    WHOLE_RUN_SEQ,
    training_case,
    training_rows,
    training_runs,
    whole_run_rows,
)

__all__ = [
    "TARGETS", "Row", "log_error", "summarize", "summarize_classes", "FINETUNE_TARGET", "finetune_memory",
    "finetune_rows", "predicted_bytes", "published_bytes", "BENCH_WAVES", "HELD_OUT_MODELS", "MAX_LOAD_CAP",
    "ServingCase", "predict_serving", "published_rows", "published_throughput", "serving_cases", "serving_rows",
    "TRAINING_FIT_PREFIX", "WHOLE_RUN_BATCH_TOKENS", "WHOLE_RUN_GPUS", "WHOLE_RUN_SEQ", "training_case",
    "training_rows", "training_runs", "whole_run_rows",
]
