"""Result types for a whole-server recommendation (issue 17): the ``server`` and
``software`` blocks ``rigsize.hardware.servers`` computes, as the JSON prints them.
Kept apart from ``rigsize.report`` until the plan report attaches them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Unknown = Literal["unknown"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerRule(_Frozen):
    rule: str = Field(description="The formula in words, with the figures it used")
    source: str = Field(description="Where the rule and its inputs come from (data/servers.toml)")


class ServerReport(_Frozen):
    """One node of the plan (nodes and GPUs per node stay in ``hardware``)."""

    cpu_cores: int | Unknown = Field(description="Physical CPU cores per node")
    cpu_class: str = Field(description="The reference server's CPUs, or unknown")
    ram_bytes: int = Field(description="System memory per node")
    nvme_bytes: int = Field(description="Local NVMe data capacity per node (OS drives not counted)")
    nvme_write_bytes_per_second: float | Unknown = Field(description="Local NVMe write throughput per node")
    shared_storage: str = Field(description="Shared parallel file system, or not required")
    network: str = Field(description="Compute fabric between nodes (a --network name), or none")
    inter_node_bytes_per_second_per_gpu: float | Unknown = Field(
        description="Per-GPU bandwidth the plan's inter-node traffic needs at its step time")
    power_watts_per_node: float | Unknown = Field(description="GPUs' TDP + host draw per node, before PUE "
                                                  "(cost.on_prem.power_watts per node)")
    rules: dict[str, ServerRule] = Field(description="Per key: the rule and its source")


class SoftwareItem(_Frozen):
    name: str
    version: str = Field(description="Version or constraint a source states, or unknown")
    why: str
    source: str = Field("", description="Where the version and the need come from")
