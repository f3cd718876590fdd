"""The emulator's own copy of Agora's code tables (docs/agora-api.md section 9).

Deliberately not read from ``snapshot_resources.rules``: the emulator is the other side of the
wire, and a table typed twice from the reference catches a slip in either copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

# Amazon S3 (vendor 1), current table S9.  17 and 23 (GovCloud) are only in the old S19 table and
# the current docs dropped them, so the emulator refuses them like the current service would.
AWS_REGIONS: Final[Mapping[int, str]] = MappingProxyType({
    0: "us-east-1", 1: "us-east-2", 2: "us-west-1", 3: "us-west-2", 4: "eu-west-1",
    5: "eu-west-2", 6: "eu-west-3", 7: "eu-central-1", 8: "ap-southeast-1", 9: "ap-southeast-2",
    10: "ap-northeast-1", 11: "ap-northeast-2", 12: "sa-east-1", 13: "ca-central-1",
    14: "ap-south-1", 15: "cn-north-1", 16: "cn-northwest-1", 18: "af-south-1", 19: "ap-east-1",
    20: "ap-northeast-3", 21: "eu-north-1", 22: "me-south-1", 24: "ap-southeast-3",
    25: "eu-south-1",
})

# Region codes accepted per vendor (S9 current; vendors 0 and 4 only in S19, still named by the
# product overview, so accepted with their old tables).  Azure, Google and vendor 11 take 0 (S9).
VENDOR_REGIONS: Final[Mapping[int, frozenset[int]]] = MappingProxyType({
    0: frozenset(range(0, 5)),          # Qiniu (S19)
    1: frozenset(AWS_REGIONS),          # Amazon S3 (S9)
    2: frozenset(range(0, 28)),         # Alibaba OSS 0-27 (S9; 23-27 added 2023-07-05, S14)
    3: frozenset(range(0, 20)),         # Tencent COS (S9)
    4: frozenset(range(0, 10)),         # Kingsoft KS3 (S19)
    5: frozenset({0}),                  # Azure (S9, 2025-12-03)
    6: frozenset({0}),                  # Google Cloud (S9, 2025-12-03)
    7: frozenset(range(0, 16)),         # Huawei OBS (S9)
    8: frozenset(range(1, 8)),          # Baidu BOS 1-7 (S9; 0 only in old S19)
    11: frozenset({0}),                 # S3-compatible (S9, S14)
})

STS_VENDORS: Final = frozenset({1, 2, 3})  # stsToken accepted for these only (S2, S14 2024-08-02)
SSE_VENDORS: Final = frozenset({1})  # extensionParams.sse: Amazon S3 only (S3)
TAG_VENDORS: Final = frozenset({1, 2})  # extensionParams.tag: Amazon S3 and Alibaba only (S3)
SSE_VALUES: Final = frozenset({"kms", "aes256"})  # (S3)
S3_COMPATIBLE: Final = 11  # needs extensionParams.endpoint (S9, S14)
AMAZON_S3: Final = 1

ACQUIRE_REGIONS: Final = frozenset({"CN", "AP", "EU", "NA"})  # clientRequest.region (S2)
