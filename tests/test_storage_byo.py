"""Bring your own bucket and keys, for any vendor code (issue #5, item 6)."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from snapshot_resources.storage import StorageConfigError, bring_your_own
from snapshot_resources.testing.pulumi_mocks import PulumiMocks

SECRET = "byo-secret-9f3c1d-SECRET"  # distinctive: must never appear in an error or plain value
ACCESS = "byo-access-77ab-SECRET"


@pytest.fixture(autouse=True)
def mocks() -> PulumiMocks:
    return PulumiMocks.install()


def _byo(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "vendor": 1,
        "region": "us-east-1",
        "bucket": "agora-snaps",
        "access_key": pulumi.Output.secret(ACCESS),
        "secret_key": pulumi.Output.secret(SECRET),
        "file_name_prefix": ["snaps"],
    }
    values.update(overrides)
    return bring_your_own("mine", **values)


def test_s3_compatible_store_with_endpoint(mocks: PulumiMocks) -> None:
    result = mocks.run(
        lambda: _byo(vendor=11, region=0, extension_params={"endpoint": "127.0.0.1:9000"}).target
    )
    assert result.value == {
        "vendor": 11,
        "region": 0,
        "bucket": "agora-snaps",
        "accessKey": ACCESS,
        "secretKey": SECRET,
        "fileNamePrefix": ["snaps"],
        "extensionParams": {"endpoint": "127.0.0.1:9000"},
    }
    assert result.secret


def test_plain_string_keys_become_secret(mocks: PulumiMocks) -> None:
    result = mocks.run(lambda: _byo(access_key=ACCESS, secret_key=SECRET).target)
    assert result.secret


@pytest.mark.parametrize(
    ("vendor", "region", "bucket", "code"),
    [
        ("baidu", "gz", "agora-snaps", 3),  # BOS Guangzhou (S9)
        ("qiniu", "North_China", "agora-snaps", 1),  # Kodo z1 (S19)
        ("kingsoft", "cn-beijing", "agora-snaps", 3),  # KS3 Beijing (S19)
        (3, "ap-guangzhou", "agora-snaps-1250000000", 3),  # COS with APPID suffix
        ("huawei", 14, "agora-snaps", 14),  # Agora's code accepted as is
    ],
)
def test_vendors_without_a_pulumi_provider_resolve_their_regions(
    mocks: PulumiMocks, vendor: str | int, region: str | int, bucket: str, code: int
) -> None:
    result = mocks.run(lambda: _byo(vendor=vendor, region=region, bucket=bucket).target)
    assert result.value["region"] == code


def test_s3_compatible_needs_an_endpoint() -> None:
    with pytest.raises(StorageConfigError, match=r"extensionParams\.endpoint: is required for vendor 11"):
        _byo(vendor=11, region=0)


def test_endpoint_is_only_for_s3_compatible() -> None:
    with pytest.raises(StorageConfigError, match=r"extensionParams\.endpoint: is set for vendor 1;"):
        _byo(extension_params={"endpoint": "h:1"})


def test_sts_token_and_expiration_go_together_for_sts_vendors(mocks: PulumiMocks) -> None:
    result = mocks.run(
        lambda: (
            _byo(sts_token=pulumi.Output.secret("tok-SECRET"), sts_expiration=1_900_000_000).target
        )
    )
    assert (result.value["stsToken"], result.value["stsExpiration"]) == (
        "tok-SECRET",
        1_900_000_000,
    )


def test_sts_token_without_expiration_is_rejected() -> None:
    with pytest.raises(StorageConfigError, match="stsExpiration: is required with stsToken"):
        _byo(sts_token="tok")


def test_sts_is_rejected_for_vendors_that_do_not_take_it() -> None:
    with pytest.raises(StorageConfigError, match="stsToken: is set for vendor 6"):
        _byo(vendor=6, region="US", sts_token="tok", sts_expiration=1)


def test_every_problem_is_reported_at_once_and_no_key_is_echoed() -> None:
    with pytest.raises(StorageConfigError) as info:
        _byo(
            access_key=ACCESS,
            secret_key=SECRET,
            region="nowhere",
            bucket="A",
            file_name_prefix=["ok", "not-ok"],
            extension_params={"sse": "des", "colour": "x"},
        )
    paths = [problem.dotted_path for problem in info.value.problems]
    assert paths == [
        "region",
        "bucket",
        "fileNamePrefix[1]",
        "extensionParams.colour",
        "extensionParams.sse",
    ]
    assert SECRET not in str(info.value)
    assert ACCESS not in str(info.value)


def test_unknown_vendor_names_the_known_ones() -> None:
    with pytest.raises(
        StorageConfigError, match=r"vendor: is 'dropbox'; a storage vendor: 0 \(qiniu\)"
    ):
        _byo(vendor="dropbox")


def test_a_storage_property_holding_the_target_is_secret_as_a_whole(mocks: PulumiMocks) -> None:
    """Measured SDK behaviour the session's design depends on: nested secrets make the whole
    top-level property secret (Output.from_input unwraps nested outputs into one)."""

    class Consumer(pulumi.CustomResource):
        def __init__(self, storage: Any) -> None:
            super().__init__("test:index:Consumer", "consumer", {"storage": storage, "n": 1})

    def program() -> pulumi.Output[str]:
        target = _byo().target_with_prefix(["lobby"])
        return Consumer(target).id

    mocks.run(program)
    recorded = mocks.one("test:index:Consumer")
    assert recorded.secret_paths == {"storage"}
    assert recorded.inputs["storage"]["fileNamePrefix"] == ["snaps", "lobby"]


def test_target_with_prefix_appends_the_session_prefix_and_stays_secret(mocks: PulumiMocks) -> None:
    result = mocks.run(lambda: _byo().target_with_prefix(["lobby", "cam1"]))
    assert result.value["fileNamePrefix"] == ["snaps", "lobby", "cam1"]
    assert result.secret


def test_target_with_prefix_checks_the_combined_length() -> None:
    with pytest.raises(StorageConfigError, match=r"fileNamePrefix: is 131 characters joined"):
        _byo().target_with_prefix(["x" * 125])


def test_target_with_prefix_checks_the_session_segments() -> None:
    with pytest.raises(StorageConfigError, match=r"fileNamePrefix\[1\]: is 'a_b'"):
        _byo().target_with_prefix(["a_b"])
