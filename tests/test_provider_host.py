"""ProviderHost: a real ``python -m pulumi.dynamic`` subprocess driven over gRPC like the engine.

Each test starts its own host (Configure state and the provider cache are per process) and stops
it.  Behaviours proven here are the ones docs/pulumi-dynamic.md sections 1-3 describe and
section 4C verified by hand.
"""

from __future__ import annotations

import base64
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pulumi.output import UNKNOWN, Unknown
from support import probe_provider
from support.probe_provider import ProbeProvider
from support.sessions import SNAPSHOT_CONFIG

from snapshot_resources.spec import PROJECT
from snapshot_resources.testing.noop_provider import NoopProvider
from snapshot_resources.testing.provider_host import (
    ProviderError,
    ProviderHost,
    ProviderHostError,
    pickled_size,
    provider_property,
    secret,
)


def _import_root(module_name: str, module_file: str) -> Path:
    """The sys.path entry from which ``module_name`` is imported: the engine's cwd must be it for
    a provider pickled by reference (docs/pulumi-dynamic.md section 1, "By value or by reference")."""
    depth = len(module_name.split("."))
    return Path(module_file).resolve().parents[depth - 1]


PROBE_ROOT = _import_root(probe_provider.__name__, probe_provider.__file__)


def _env_without_pythonpath() -> dict[str, str]:
    # The engine sets no PYTHONPATH (docs/pulumi-dynamic.md section 1); drop any the test runner inherited so
    # imports succeed only through cwd or the installed package.
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.fixture
def host() -> Iterator[ProviderHost]:
    with ProviderHost(project=PROJECT, cwd=PROBE_ROOT, env=_env_without_pythonpath()) as started:
        yield started


# --- Configure ------------------------------------------------------------------------------


def test_configure_reports_the_dynamic_servicer_protocol(host: ProviderHost) -> None:
    result = host.configure({})

    assert (result.accept_secrets, result.supports_preview) == (False, False)
    assert host.plugin_version() == "0.1.0"


def test_configure_delivers_secret_config_decrypted(host: ProviderHost) -> None:
    customer_secret = "cs-9f2b7c1e-distinctive"
    host.configure(
        {"agora:customerSecret": customer_secret, f"{PROJECT}:apiUrl": "http://127.0.0.1:9"},
        secret_keys=["agora:customerSecret"],
    )
    res = host.resource(ProbeProvider(), name="cfg")

    outs = res.create({"configKeys": ["agora:customerSecret", "apiUrl"]}).outs

    # A key without a namespace resolves against PULUMI_PROJECT (docs/pulumi-dynamic.md section 1, pattern 3).
    assert outs["config"] == {
        "agora:customerSecret": customer_secret,
        "apiUrl": "http://127.0.0.1:9",
    }


def test_configure_sends_object_config_as_json_text(host: ProviderHost) -> None:
    host.configure({"agora:sessions": {"lobby": {"uid": 527841}, "a": [1, "x"]}})
    res = host.resource(ProbeProvider(), name="cfg-object")

    outs = res.create({"configKeys": ["agora:sessions"]}).outs

    assert outs["config"] == {"agora:sessions": '{"a":[1,"x"],"lobby":{"uid":527841}}'}


def test_configure_rejects_secret_keys_missing_from_config(host: ProviderHost) -> None:
    with pytest.raises(ValueError, match="agora:customerSecret"):
        host.configure({}, secret_keys=["agora:customerSecret"])


# --- Check ----------------------------------------------------------------------------------


def test_check_failures_round_trip(host: ProviderHost) -> None:
    result = host.resource(ProbeProvider(), name="bad").check({"size": "huge"})

    assert result.failures == [("size", "must be 'small' or 'large'")]


def test_check_with_unknown_input_reports_no_failure_and_keeps_it_unknown(
    host: ProviderHost,
) -> None:
    result = host.resource(ProbeProvider(), name="preview").check({"size": UNKNOWN})

    assert result.failures == []
    assert isinstance(result.inputs["size"], Unknown)


def test_check_returns_provider_property_with_inputs(host: ProviderHost) -> None:
    provider = ProbeProvider()
    result = host.check(
        host.urn("plain"), {}, {"size": "small", "__provider": provider_property(provider)}
    )

    assert result.inputs == {"size": "small", "__provider": provider_property(provider)}


# --- Create / serialization -----------------------------------------------------------------


def test_numbers_arrive_and_return_as_floats_and_tuples_as_lists(host: ProviderHost) -> None:
    outs = host.resource(ProbeProvider(), name="numbers").create({"count": 2, "pair": (1, 2)}).outs

    assert outs["types"] == {"count": "float", "pair": "list"}
    assert outs["count"] == 2.0
    assert isinstance(outs["count"], float)
    assert outs["pair"] == [1.0, 2.0]


def test_exception_in_create_becomes_provider_error_with_traceback(host: ProviderHost) -> None:
    res = host.resource(ProbeProvider(), name="boom")

    with pytest.raises(ProviderError) as caught:
        res.create({"raise": "quota-7d1e exceeded"})

    error = caught.value
    assert (error.operation, error.code) == ("Create", "UNKNOWN")
    assert "Traceback (most recent call last)" in error.message
    assert error.last_line == "support.probe_provider.ProbeError: quota-7d1e exceeded"
    assert res.id is None


def test_empty_id_from_create_is_an_error_as_in_the_engine(host: ProviderHost) -> None:
    with pytest.raises(ProviderError, match=r"empty resource\.ID"):
        host.resource(ProbeProvider(), name="no-id").create({"id": ""})


def test_unknown_values_are_refused_outside_check_and_diff(host: ProviderHost) -> None:
    with pytest.raises(ValueError, match="only in Check and Diff"):
        host.create(
            host.urn("u"), {"size": UNKNOWN, "__provider": provider_property(NoopProvider())}
        )


# --- Secrets --------------------------------------------------------------------------------


def test_secret_inputs_reach_the_provider_plain_and_outputs_are_marked_again(
    host: ProviderHost,
) -> None:
    res = host.resource(ProbeProvider(), name="secret")
    res.check({"storage": secret({"secretKey": "sk-41c9-distinctive"}), "size": "small"})

    created = res.create()

    # acceptSecrets=False: the engine strips markers before the call and re-applies them to
    # same-named outputs afterwards (docs/pulumi-dynamic.md section 2, Inputs).
    assert created.outs["sawSecretMarker"] is False
    assert created.outs["storage"] == {"secretKey": "sk-41c9-distinctive"}
    assert created.secret_paths == frozenset({("storage",)})


def test_nested_secret_marks_only_the_nested_output(host: ProviderHost) -> None:
    res = host.resource(NoopProvider(), name="nested")
    res.check({"storage": {"bucket": "b", "secretKey": secret("sk")}})

    assert res.create().secret_paths == frozenset({("storage", "secretKey")})


def test_secret_returned_by_the_provider_is_reported_secret(host: ProviderHost) -> None:
    created = host.resource(ProbeProvider(), name="token").create({"secretOutput": "tok-60aa"})

    assert created.outs["token"] == "tok-60aa"
    assert created.secret_paths == frozenset({("token",)})


# --- Diff / Update / Read / Delete ----------------------------------------------------------


def test_diff_receives_old_outputs_as_olds(host: ProviderHost) -> None:
    res = host.resource(ProbeProvider(), name="olds")
    res.check({"size": "small"})
    res.create()

    result = res.diff({"size": "small", "reportOlds": True})

    # Output-only keys ("thread", "types", ...) prove olds are outputs (docs/pulumi-dynamic.md section 3, Diff).
    assert {"thread", "types", "sawSecretMarker", "size", "__provider"} <= set(result.replaces)
    assert result.changes == "DIFF_UNKNOWN"


def test_diff_maps_replacements_and_unknowns(host: ProviderHost) -> None:
    res = host.resource(ProbeProvider(), name="diff")
    res.check({"size": "small", "region": "eu"})
    res.create()

    same = res.diff({"size": "small", "region": "eu"})
    moved = res.diff({"size": "small", "region": "us"})
    preview = res.diff({"size": "small", "region": UNKNOWN})

    assert (same.changes, same.replaces) == ("DIFF_NONE", [])
    assert (moved.changes, moved.replaces, moved.delete_before_replace) == (
        "DIFF_SOME",
        ["region"],
        True,
    )
    assert (preview.changes, preview.replaces) == ("DIFF_SOME", ["region"])
    # The dynamic servicer never sends these (docs/pulumi-dynamic.md section 3, Diff).
    assert (moved.stables, moved.changed_keys, moved.has_detailed_diff) == ([], [], False)


def test_update_returns_full_outputs(host: ProviderHost) -> None:
    res = host.resource(ProbeProvider(), name="update")
    res.check({"size": "small"})
    res.create()
    res.check({"size": "large"})

    outs = res.update().outs

    assert (outs["size"], outs["updated"]) == ("large", True)
    assert res.outputs == outs


def test_read_can_rewrite_inputs_after_drift(host: ProviderHost) -> None:
    res = host.resource(ProbeProvider(), name="drift")
    res.check({"size": "small", "driftTo": "medium"})
    res.create()

    result = res.read()

    assert result.outs["size"] == "medium"
    assert result.inputs is not None
    assert result.inputs["size"] == "medium"
    assert res.inputs["size"] == "medium"


def test_read_with_empty_id_drops_the_resource(host: ProviderHost) -> None:
    res = host.resource(ProbeProvider(), name="gone")
    res.check({"goneOnRead": True})
    res.create()

    assert res.read().id == ""
    assert res.id is None


def test_failed_delete_keeps_the_resource(host: ProviderHost) -> None:
    res = host.resource(ProbeProvider(), name="sticky")
    res.check({"failDelete": True})
    created = res.create()

    with pytest.raises(ProviderError, match="delete refused by probe"):
        res.delete()
    assert res.id == created.id


def test_full_lifecycle_with_noop_provider(host: ProviderHost) -> None:
    res = host.resource(NoopProvider(), name="noop")

    assert res.check({"size": "small"}).failures == []
    created = res.create()
    assert created.id.startswith("noop-")
    assert res.diff({"size": "large"}).changes == "DIFF_NONE"
    res.check({"size": "large"})
    assert res.update().outs["size"] == "large"
    assert res.read().id == created.id
    res.delete()

    assert res.id is None


def test_resource_refuses_a_user_supplied_provider_key(host: ProviderHost) -> None:
    with pytest.raises(ValueError, match="__provider"):
        host.resource(NoopProvider(), name="x").check({"__provider": "mine"})


# --- Pickling and process model -------------------------------------------------------------


@pytest.mark.skipif(
    sys.prefix == sys.base_prefix, reason="needs a virtualenv to name in runtime.options"
)
def test_process_gets_the_engine_environment_and_the_virtualenv_python() -> None:
    options = {"virtualenv": sys.prefix, "toolchain": "pip"}
    env = {**_env_without_pythonpath(), "CLI_ONLY_MARKER": "inherited"}
    with ProviderHost(project=PROJECT, cwd=PROBE_ROOT, env=env, runtime_options=options) as host:
        keys = ["PULUMI_PROJECT", "PULUMI_RUNTIME_VIRTUALENV", "PULUMI_RUNTIME_TOOLCHAIN",
                "CLI_ONLY_MARKER", "PYTHONPATH"]
        outs = host.resource(ProbeProvider(), name="env").create({"envKeys": keys}).outs

    # Engine: os.Environ() + PULUMI_RUNTIME_<OPTION> + PULUMI_PROJECT, no PYTHONPATH; the shim
    # runs the virtualenv's python (docs/pulumi-dynamic.md section 1).
    assert outs["env"] == {
        "PULUMI_PROJECT": PROJECT,
        "PULUMI_RUNTIME_VIRTUALENV": sys.prefix,
        "PULUMI_RUNTIME_TOOLCHAIN": "pip",
        "CLI_ONLY_MARKER": "inherited",
    }  # PYTHONPATH reported None, and a None value vanishes on the wire: it was not set.
    assert outs["executable"] == str(Path(sys.prefix) / "bin" / "python")


def test_noop_provider_pickles_small_and_by_reference() -> None:
    pickle_bytes = base64.b64decode(provider_property(NoopProvider()))

    assert pickled_size(NoopProvider()) < 100
    assert b"snapshot_resources.testing.noop_provider" in pickle_bytes


def test_installed_provider_loads_in_a_fresh_process_outside_the_repo(tmp_path: Path) -> None:
    with ProviderHost(project=PROJECT, cwd=tmp_path, env=_env_without_pythonpath()) as outside:
        res = outside.resource(NoopProvider(), name="elsewhere")
        res.check({"size": "small"})

        assert res.create().outs["size"] == "small"


def test_provider_module_not_importable_from_cwd_fails_every_rpc(tmp_path: Path) -> None:
    with ProviderHost(project=PROJECT, cwd=tmp_path, env=_env_without_pythonpath()) as outside:
        res = outside.resource(ProbeProvider(), name="lost")

        with pytest.raises(ProviderError) as caught:
            res.check({"size": "small"})

    assert caught.value.last_line == "ModuleNotFoundError: No module named 'support'"


def test_four_concurrent_creates_run_on_four_workers(host: ProviderHost) -> None:
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def create(index: int) -> None:
        try:
            res = host.resource(ProbeProvider(), name=f"parallel-{index}")
            results[index] = res.create({"barrier": True}).outs["thread"]
        except BaseException as error:  # reported below, with the failing thread's error
            errors.append(error)

    threads = [
        threading.Thread(target=create, args=(i,)) for i in range(probe_provider.PARALLELISM)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    # All four met at the barrier inside the provider process, each on its own worker.
    assert len(set(results.values())) == probe_provider.PARALLELISM


def test_host_stops_cleanly_with_no_stray_process() -> None:
    with ProviderHost(project=PROJECT, cwd=PROBE_ROOT) as started:
        pid = started.process.pid
        started.configure({})

    assert started.process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ProviderHostError, match="not started"):
        started.configure({})


def test_provider_output_is_captured_for_log_scans(host: ProviderHost) -> None:
    res = host.resource(ProbeProvider(), name="chatty")
    res.create({"print": "to-stdout-5e0a", "log": "to-stderr-77b3"})
    host.stop()

    assert "to-stdout-5e0a" in host.stdout_text()
    assert "to-stderr-77b3" in host.stderr_text()


def test_child_that_dies_before_reporting_a_port_raises_with_its_stderr(tmp_path: Path) -> None:
    # `python -m` puts cwd first on sys.path (docs/pulumi-dynamic.md section 1), so a package named pulumi in
    # the program directory shadows the SDK and the child exits before printing its port.
    shadow = tmp_path / "pulumi"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise SystemExit('shadowed-pulumi-3c1f')\n")
    host = ProviderHost(project=PROJECT, cwd=tmp_path, python=sys.executable)

    with pytest.raises(ProviderHostError, match="shadowed-pulumi-3c1f"):
        host.start()
    assert host.process.returncode is not None


# --- The project's provider, hosted as the engine hosts it ----------------------------------

SESSION_INPUTS = {
    "appId": "0123456789abcdef0123456789abcdef",
    "cname": "lobby",
    "uid": "527841",
    "resourceExpiredHour": 720,
    "recordingConfig": {
        "channelType": 1,
        "streamTypes": 2,
        "maxIdleTime": 300,
        "subscribeVideoUids": ["101", "102"],
        "subscribeUidGroup": 0,
    },
    "snapshotConfig": SNAPSHOT_CONFIG,
    "storage": secret(
        {
            "vendor": 1,
            "region": 0,
            "bucket": "my-snapshots",
            "accessKey": "AKIAEXAMPLEEXAMPLE00",
            "secretKey": "sk-host-2b9d",
            "fileNamePrefix": ["snapshots", "lobby"],
        }
    ),
}


# The provider is imported inside these tests so the host's own tests above do not depend on it.


def test_session_provider_pickles_small_and_by_reference() -> None:
    from snapshot_resources.provider import SnapshotSessionProvider

    pickle_bytes = base64.b64decode(provider_property(SnapshotSessionProvider()))

    assert len(pickle_bytes) < 100
    assert b"snapshot_resources.provider" in pickle_bytes


def test_session_provider_checks_and_diffs_in_a_fresh_process_outside_the_repo(
    tmp_path: Path,
) -> None:
    from snapshot_resources.provider import SnapshotSessionProvider

    with ProviderHost(project=PROJECT, cwd=tmp_path, env=_env_without_pythonpath()) as outside:
        outside.configure({})  # no credentials: check and diff must still work (preview)
        res = outside.resource(SnapshotSessionProvider(), name="lobby")
        checked = res.check(SESSION_INPUTS)
        preview = res.check({**SESSION_INPUTS, "storage": UNKNOWN})
        urn, provider_value = res.urn, res.provider_value
        outputs = {**checked.inputs, "sid": "38f8e3cfdc474cd56fc1ceba380d7e1a", "status": 5}
        unchanged = outside.diff("sid-1", urn, outputs, checked.inputs)
        moved = outside.diff("sid-1", urn, outputs, {**checked.inputs, "cname": "hall"})

    assert checked.failures == []
    assert preview.failures == []
    assert checked.secret_paths == frozenset({("storage",)})
    assert unchanged.changes == "DIFF_NONE"
    assert (moved.replaces, moved.delete_before_replace) == (["cname"], True)
    assert provider_value == checked.inputs["__provider"]
    assert "sk-host-2b9d" not in outside.stderr_text() + outside.stdout_text()
