"""Upload-only permission documents, one per vendor grammar, as pure functions returning dicts.

Agora's old reference asks for a write-only key and publishes no permission list (S19;
AgoraIO/Docs-Source#690 notes the gap), so each document grants what an upload needs and nothing
else: no read, list or delete.  The documents are plain data so tests can check them, and the AWS
one is proven upload-only against moto's IAM enforcement (tests/test_s3_policy_moto.py).

Scope: the objects under the target's ``fileNamePrefix`` (``a/b/*``); with no prefix, every object
in the bucket (``bucket/*``), which is then the whole of what Agora writes.  A session's own prefix
is appended to the storage prefix, so its files stay inside the grant.  ``object_prefix`` is the
joined prefix with a trailing slash, as ``ResolvedStorage.object_prefix`` gives it.
"""

from __future__ import annotations

import json
from typing import Any

PolicyDocument = dict[str, Any]


def aws_partition(region: str) -> str:
    """The ARN partition of an AWS region: China regions are ``aws-cn`` (AWS General Reference,
    "Amazon Resource Names"); Agora's S3 table has cn-north-1 and cn-northwest-1 (S9)."""
    return "aws-cn" if region.startswith("cn-") else "aws"


def aws_upload_policy(
    bucket: str,
    object_prefix: str = "",
    *,
    tagging: bool = False,
    kms_key_arn: str | None = None,
    partition: str = "aws",
) -> PolicyDocument:
    """An IAM identity policy allowing only uploads under ``object_prefix`` in ``bucket``.

    - ``s3:PutObject`` also authorises CreateMultipartUpload, UploadPart and
      CompleteMultipartUpload; ``s3:AbortMultipartUpload`` lets an interrupted upload be cleaned up
      (docs/storage.md 2.1).
    - ``s3:PutObjectTagging`` only when Agora sends a tag (``extensionParams.tag``, S3): a PutObject
      with an ``x-amz-tagging`` header needs it.
    - ``kms:GenerateDataKey`` and ``kms:Decrypt`` (multipart uploads read back the data key) only
      when the bucket encrypts with a customer-managed KMS key (docs/storage.md 2.1).
    """
    objects = f"arn:{partition}:s3:::{bucket}/{object_prefix}*"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AgoraSnapshotUpload",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
            "Resource": [objects],
        }
    ]
    if tagging:
        statements.append(
            {
                "Sid": "AgoraSnapshotTagging",
                "Effect": "Allow",
                "Action": ["s3:PutObjectTagging"],
                "Resource": [objects],
            }
        )
    if kms_key_arn is not None:
        statements.append(
            {
                "Sid": "AgoraSnapshotKms",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": [kms_key_arn],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def alibaba_upload_policy(
    bucket: str, object_prefix: str = "", *, tagging: bool = False
) -> PolicyDocument:
    """A RAM custom policy allowing only uploads under ``object_prefix``.

    OSS authorises multipart parts with ``oss:PutObject``; ``oss:AbortMultipartUpload`` for cleanup;
    ``oss:PutObjectTagging`` only with ``extensionParams.tag`` (docs/storage.md 2.2).
    """
    actions = ["oss:PutObject", "oss:AbortMultipartUpload"]
    if tagging:
        actions.append("oss:PutObjectTagging")
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": actions,
                "Resource": [f"acs:oss:*:*:{bucket}/{object_prefix}*"],
            }
        ],
    }


def tencent_appid(bucket: str) -> str:
    """The APPID suffix of a COS bucket name (``name-1250000000``); COS names always carry it
    (rules ``bucket_name_cos``; cloud.tencent.com/document/product/436/13312)."""
    return bucket.rsplit("-", 1)[1]


def tencent_upload_policy(bucket: str, object_prefix: str = "", *, region: str) -> PolicyDocument:
    """A CAM policy allowing only uploads under ``object_prefix`` of the COS bucket.

    COS authorises each multipart step as its own action, so all of them are listed
    (docs/storage.md 2.3).  Resource form ``qcs::cos:<region>:uid/<appid>:<bucket>/<key>``.
    """
    appid = tencent_appid(bucket)
    return {
        "version": "2.0",
        "statement": [
            {
                "effect": "allow",
                "action": [
                    "name/cos:PutObject",
                    "name/cos:InitiateMultipartUpload",
                    "name/cos:UploadPart",
                    "name/cos:CompleteMultipartUpload",
                    "name/cos:AbortMultipartUpload",
                ],
                "resource": [f"qcs::cos:{region}:uid/{appid}:{bucket}/{object_prefix}*"],
            }
        ],
    }


def huawei_upload_policy(bucket: str, object_prefix: str = "") -> PolicyDocument:
    """An IAM custom (fine-grained, version 1.1) policy allowing only uploads under the prefix.

    Actions ``obs:object:PutObject`` and ``obs:object:AbortMultipartUpload`` on
    ``OBS:*:*:object:<bucket>/<key>`` (docs/storage.md 2.6, the IAM custom role option).
    """
    return {
        "Version": "1.1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["obs:object:PutObject", "obs:object:AbortMultipartUpload"],
                "Resource": [f"OBS:*:*:object:{bucket}/{object_prefix}*"],
            }
        ],
    }


def to_json(document: PolicyDocument) -> str:
    """The document as the vendors' APIs take it: compact JSON with a stable key order."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True)
