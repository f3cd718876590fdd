"""The upload-only policy documents as data (storage/policies.py)."""

from __future__ import annotations

from snapshot_resources.storage import policies


def test_aws_policy_allows_put_and_abort_under_the_prefix_only() -> None:
    assert policies.aws_upload_policy("b", "a/c/") == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AgoraSnapshotUpload",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                "Resource": ["arn:aws:s3:::b/a/c/*"],
            }
        ],
    }


def test_aws_policy_without_prefix_covers_the_bucket_objects() -> None:
    [statement] = policies.aws_upload_policy("b")["Statement"]
    assert statement["Resource"] == ["arn:aws:s3:::b/*"]


def test_aws_policy_adds_tagging_and_kms_only_when_asked() -> None:
    document = policies.aws_upload_policy("b", "p/", tagging=True, kms_key_arn="arn:k")
    assert [s["Sid"] for s in document["Statement"]] == [
        "AgoraSnapshotUpload",
        "AgoraSnapshotTagging",
        "AgoraSnapshotKms",
    ]
    assert document["Statement"][1]["Action"] == ["s3:PutObjectTagging"]
    assert document["Statement"][2]["Resource"] == ["arn:k"]


def test_aws_partition_is_aws_cn_for_china_regions() -> None:
    assert [policies.aws_partition(r) for r in ("cn-north-1", "cn-northwest-1", "us-east-1")] == [
        "aws-cn",
        "aws-cn",
        "aws",
    ]


def test_no_policy_grants_anything_but_writing_objects() -> None:
    documents = [
        policies.aws_upload_policy("b", "p/", tagging=True, kms_key_arn="arn:k"),
        policies.alibaba_upload_policy("b", "p/", tagging=True),
        policies.tencent_upload_policy("b-1250000000", "p/", region="ap-guangzhou"),
        policies.huawei_upload_policy("b", "p/"),
    ]
    statements: list[dict[str, list[str]]] = [
        s for d in documents for s in (d["Statement"] if "Statement" in d else d["statement"])
    ]
    actions = {a for s in statements for a in s.get("Action", s.get("action", []))}
    verbs = {a.rsplit(":", 1)[-1] for a in actions}
    assert verbs == {
        "PutObject",
        "AbortMultipartUpload",
        "PutObjectTagging",
        "InitiateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "GenerateDataKey",
        "Decrypt",
    }
    resources = [r for s in statements for r in s.get("Resource", s.get("resource", []))]
    assert all(
        r == "arn:k" or r.endswith("b/p/*") or r.endswith("b-1250000000/p/*") for r in resources
    )


def test_alibaba_policy_resource_and_actions() -> None:
    assert policies.alibaba_upload_policy("b", "p/") == {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["oss:PutObject", "oss:AbortMultipartUpload"],
                "Resource": ["acs:oss:*:*:b/p/*"],
            }
        ],
    }


def test_tencent_policy_names_each_multipart_step_and_the_appid() -> None:
    [statement] = policies.tencent_upload_policy("snaps-1250000000", "p/", region="ap-guangzhou")[
        "statement"
    ]
    assert statement["resource"] == ["qcs::cos:ap-guangzhou:uid/1250000000:snaps-1250000000/p/*"]
    assert "name/cos:InitiateMultipartUpload" in statement["action"]
    assert "name/cos:UploadPart" in statement["action"]


def test_huawei_policy_is_an_obs_object_policy() -> None:
    [statement] = policies.huawei_upload_policy("b", "p/")["Statement"]
    assert statement["Action"] == ["obs:object:PutObject", "obs:object:AbortMultipartUpload"]
    assert statement["Resource"] == ["OBS:*:*:object:b/p/*"]


def test_to_json_is_compact_and_stable() -> None:
    assert policies.to_json({"b": 1, "a": [2]}) == '{"a":[2],"b":1}'
