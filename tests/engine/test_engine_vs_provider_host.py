"""`ProviderHost` (our model of the engine, layer 3) against the real engine (layer 4), same scenario.

One session lives through create, an in-place update (subscription list), a replacement
(interval) and delete, first under `pulumi up`/`destroy`, then through `ProviderHost` with the very
inputs the engine stored. Both must send Agora the same calls in the same order, store the same
outputs with the same secret paths, and classify each change the same way. Where they differ the
engine is right and the model is fixed.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from support.engine_stack import SESSION_TYPE, ExampleStack, running_tasks

from snapshot_resources.provider import SnapshotSessionProvider
from snapshot_resources.testing.provider_host import PROVIDER_KEY, ProviderHost, secret

SECRET_SIG = "4dabf18193072939515e22adb298388d"
# Outputs that differ from run to run by nature (Agora's ids, times).
PER_RUN = frozenset({"sid", "resourceId", "startedAt", "fileNamePattern", "status", "tokenExpiresAt",
                     "resourceExpiresAt"})


def _secret_paths(value: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            return {prefix}
        return set().union(*(_secret_paths(v, (*prefix, k)) for k, v in value.items()), set())
    return set()


def _reveal(value: Any) -> Any:
    """A ``--show-secrets`` export's value with each secret replaced by its plaintext."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            return _reveal(json.loads(value["plaintext"]))
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


def _agora_calls(log: list[dict[str, Any]]) -> list[str]:
    """The operations Agora saw, consecutive repeats (readiness polling) collapsed, and the
    starts a replacement's predecessor refused while leaving (53, ridden out) left out with the
    acquire before each: their number depends on timing, not on the model."""
    kept: list[str] = []
    for entry in log:
        if entry["operation"] == "start" and entry["status"] == 400:
            if kept and kept[-1] == "acquire":
                kept.pop()
            continue
        kept.append(entry["operation"])
    return [op for op, _ in itertools.groupby(kept)]


def _comparable(outputs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in outputs.items() if k not in PER_RUN and k != PROVIDER_KEY}


def _with_secrets(plain: Mapping[str, Any], paths: set[tuple[str, ...]]) -> dict[str, Any]:
    result: dict[str, Any] = {k: v for k, v in plain.items() if k != PROVIDER_KEY}
    for path in paths:
        node = result
        for key in path[:-1]:
            node[key] = dict(node[key])
            node = node[key]
        node[path[-1]] = secret(node[path[-1]])
    return result


def test_provider_host_and_the_engine_agree_on_a_whole_session_life(example: ExampleStack) -> None:
    example.sessions = {"stage": example.sessions["stage"]}
    example.with_every_secret(token_for="stage", decrypting="stage")
    example.publish()
    edits: list[Callable[[dict[str, Any]], None]] = [
        lambda s: None,
        lambda s: s["recordingConfig"].update(subscribeVideoUids=["1001"]),
        lambda s: s["snapshotConfig"].update(captureInterval=15),
    ]
    engine_steps: list[dict[str, Any]] = []
    log_start = 0
    for edit in edits:
        edit(example.sessions["stage"])
        example.apply()
        run = example.up()
        assert run.ok, run.terminal
        [encrypted] = example.offline.resources(example.stack, SESSION_TYPE)
        deployment = example.stack.export_stack().deployment or {}
        [plain] = [r for r in deployment["resources"]  # --show-secrets: the plaintext inputs
                   if r["type"] == SESSION_TYPE]
        log = example.agora.admin.request_log()
        engine_steps.append({
            "inputs": _reveal(plain["inputs"]), "outputs": _reveal(plain["outputs"]),
            "input_secrets": _secret_paths(encrypted["inputs"]),
            "output_secrets": _secret_paths(encrypted["outputs"]),
            "calls": _agora_calls(log[log_start:]),
            "ops": sorted({op for op, name in run.steps if name == "stage"}),
        })
        log_start = len(log)
    assert example.destroy().ok
    log = example.agora.admin.request_log()
    engine_delete_calls = _agora_calls(log[log_start:])
    log_start = len(log)
    assert running_tasks(example.agora) == []
    # What the engine made the provider do (the model must match all of it, below).
    assert engine_steps[0]["calls"] == ["acquire", "start", "query"]
    assert engine_steps[1]["calls"] == ["update"]
    assert engine_steps[2]["calls"] == ["stop", "acquire", "start", "query"]
    assert engine_delete_calls == ["stop"]  # delete does not wait for the exit

    with ProviderHost() as host:
        config = example.provider_config()
        host.configure(config, secret_keys=[k for k in config if k in example.secrets])
        session = host.resource(SnapshotSessionProvider(), name="stage")
        for number, step in enumerate(engine_steps):
            news = _with_secrets(step["inputs"], step["input_secrets"])
            assert not session.check(news).failures
            if number == 0:
                session.create()
            else:
                diff = session.diff(news)
                assert step["ops"] == (["update"] if not diff.replaces else
                                       ["create-replacement", "delete-replaced", "replace"])
                if diff.replaces:  # what the engine does for delete-before-replace
                    assert diff.delete_before_replace
                    session.delete()
                    session.check(news)
                    session.create()
                else:
                    session.update()
            log = example.agora.admin.request_log()
            assert _agora_calls(log[log_start:]) == step["calls"], number
            log_start = len(log)
            assert _comparable(session.outputs) == _comparable(step["outputs"]), number
            assert set(session.output_secret_paths) == step["output_secrets"], number
        session.delete()
        assert _agora_calls(example.agora.admin.request_log()[log_start:]) == engine_delete_calls
    assert running_tasks(example.agora) == []


def test_the_engine_starts_the_provider_process_as_provider_host_does(
    example: ExampleStack, tmp_path: Path
) -> None:
    """Same interpreter arguments, working directory and PULUMI_* variables; with an inline
    program the engine passes the runtime option ``address`` (its ``client`` runtime), not the
    ``virtualenv`` of Pulumi.yaml, which is why PULUMI_PYTHON_CMD names the interpreter."""
    dump = tmp_path / "provider-starts"
    wrapper = tmp_path / "python"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'{{ pwd; echo "$*"; env | grep ^PULUMI_ | grep -v PASSPHRASE | sort; }} > "{dump}.$$"\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    wrapper.chmod(0o755)
    example.offline.env["PULUMI_PYTHON_CMD"] = str(wrapper)
    example.stack = example.offline.stack(example.project_dir, example.stack.name)
    example.sessions = {"stage": example.sessions["stage"]}
    example.publish()
    example.apply()

    assert example.up().ok
    [start, *_] = sorted(tmp_path.glob("provider-starts.*"))
    cwd, argv, *variables = start.read_text().splitlines()
    engine_env = dict(line.split("=", 1) for line in variables)

    assert Path(cwd) == example.project_dir
    assert argv.startswith("-u -m pulumi.dynamic ")
    assert "PULUMI_RUNTIME_VIRTUALENV" not in engine_env
    with ProviderHost(cwd=example.project_dir,
                      runtime_options={"address": engine_env["PULUMI_RUNTIME_ADDRESS"]}) as host:
        model = host.environment()
        model_argv = cast(list[str], host.process.args)
    for key in ("PULUMI_PROJECT", "PULUMI_CONFIG", "PULUMI_RUNTIME_ADDRESS"):
        assert model[key] == engine_env[key], key
    assert model_argv[1:4] == ["-u", "-m", "pulumi.dynamic"]
