"""Where the emulator puts a snapshot: a local directory, or an S3 API with the task's own keys.

* vendor 11 (S3-compatible, S9, S14): the S3 API at ``extensionParams.endpoint``;
* vendor 1 (Amazon S3) when the server was given ``s3_endpoint``: that S3 API (e.g. moto);
* everything else: ``<storage_dir>/<bucket>/<key>``.

S3 uploads sign with the ``accessKey``/``secretKey`` (and ``stsToken``) of the task's
``storageConfig``, so a wrong or under-privileged key fails here as it would at the vendor, and the
task reports it (NCS event 1, ``uploadingStatus``).  A file that could not be uploaded is kept
under ``<storage_dir>/.agora-backup/``, as Agora's backup cloud keeps it (S6 "backuped").

An endpoint without a scheme is a domain, as ``extensionParams.endpoint`` is documented (S9):
HTTPS, except on a loopback host, where local test stores speak plain HTTP.
Error texts carry the service's error code only: a vendor's message can echo the key id.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from snapshot_resources.emulator import tables
from snapshot_resources.emulator.models import UploadFailure
from snapshot_resources.emulator.validation import StorageConfig

BACKUP_DIR: Final = ".agora-backup"
# The NCS uploader codes (S12): 32 storage configuration error, 47 upload failed.
CONFIG_ERROR: Final = 32
UPLOAD_FAILED: Final = 47
_CONFIG_CODES: Final = frozenset({
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket",
    "AllAccessDisabled", "InvalidToken", "ExpiredToken", "InvalidBucketName",
})
_CLIENTS: Final = 16  # cached S3 clients; bounded so key rotation cannot grow memory
_LOOPBACK: Final = ("127.0.0.1", "localhost", "::1", "[::1]")


class UploadError(Exception):
    def __init__(self, failure: UploadFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class SnapshotStore:
    """Routes each upload by the task's storageConfig (module docstring)."""

    def __init__(self, storage_dir: Path, *, s3_endpoint: str | None = None) -> None:
        self.storage_dir = storage_dir
        self.s3_endpoint = s3_endpoint
        self._clients: OrderedDict[tuple[str, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, storage: StorageConfig, key: str, data: bytes) -> None:
        """Upload one snapshot; raise ``UploadError`` as the vendor would refuse it."""
        endpoint = self._endpoint(storage)
        if endpoint is None:
            self._write(self.storage_dir, storage.bucket, key, data)
        else:
            self._put_s3(endpoint, storage, key, data)

    def keep_backup(self, storage: StorageConfig, key: str, data: bytes) -> None:
        """Keep a file that failed to upload, as Agora's backup cloud does (S6)."""
        with contextlib.suppress(UploadError):
            self._write(self.storage_dir / BACKUP_DIR, storage.bucket, key, data)

    def _endpoint(self, storage: StorageConfig) -> str | None:
        if storage.vendor == tables.S3_COMPATIBLE:
            return _with_scheme(storage.endpoint or "")
        if storage.vendor == tables.AMAZON_S3 and self.s3_endpoint:
            return self.s3_endpoint
        return None

    @staticmethod
    def _write(root: Path, bucket: str, key: str, data: bytes) -> None:
        if bucket in (".", "..") or "/" in bucket or "\\" in bucket:
            raise UploadError(UploadFailure(CONFIG_ERROR, "the bucket name cannot be a local "
                                            "directory name"))
        path = root / bucket / key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except OSError as error:
            raise UploadError(UploadFailure(UPLOAD_FAILED, f"upload failed: "
                                            f"{error.strerror or type(error).__name__}")) \
                from None

    def _put_s3(self, endpoint: str, storage: StorageConfig, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        extra: dict[str, Any] = {}
        if storage.sse == "kms":
            extra["ServerSideEncryption"] = "aws:kms"
        elif storage.sse == "aes256":
            extra["ServerSideEncryption"] = "AES256"
        if storage.tag:
            extra["Tagging"] = storage.tag  # needs s3:PutObjectTagging (docs/storage.md 2.1)
        try:
            self._client(endpoint, storage).put_object(
                Bucket=storage.bucket, Key=key, Body=data, ContentType="image/jpeg", **extra)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", "Unknown"))
            kind = CONFIG_ERROR if code in _CONFIG_CODES else UPLOAD_FAILED
            raise UploadError(UploadFailure(kind, f"upload refused by the storage: {code}")) \
                from None
        except BotoCoreError as error:
            raise UploadError(UploadFailure(UPLOAD_FAILED, f"upload failed: "
                                            f"{type(error).__name__}")) from None

    def _client(self, endpoint: str, storage: StorageConfig) -> Any:
        region = tables.AWS_REGIONS.get(storage.region, "us-east-1") \
            if storage.vendor == tables.AMAZON_S3 else "us-east-1"
        cache_key = (endpoint, region, storage.access_key, storage.secret_key,
                     storage.sts_token or "")
        with self._lock:
            client = self._clients.get(cache_key)
            if client is not None:
                self._clients.move_to_end(cache_key)
                return client
            import boto3
            from botocore.config import Config

            client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint, region_name=region,
                aws_access_key_id=storage.access_key,
                aws_secret_access_key=storage.secret_key,
                aws_session_token=storage.sts_token,
                # Path style works with every S3-compatible store; bounded time on each call.
                config=Config(s3={"addressing_style": "path"}, connect_timeout=5,
                              read_timeout=10, retries={"max_attempts": 2, "mode": "standard"}),
            )
            self._clients[cache_key] = client
            while len(self._clients) > _CLIENTS:
                self._clients.popitem(last=False)
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


def _with_scheme(endpoint: str) -> str:
    if "://" in endpoint:
        return endpoint
    host = urlsplit(f"//{endpoint}").hostname or ""
    scheme = "http" if host in _LOOPBACK or host.startswith("127.") else "https"
    return f"{scheme}://{endpoint}"
