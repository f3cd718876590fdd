"""The identity rules in `pulumi preview`: the same messages as `validate` and `check` give
(tests/test_identity_rules.py), shown in the terminal, and nothing sent to Agora."""

from __future__ import annotations

from support.engine_stack import PROJECT, ExampleStack, recorder_token

from snapshot_resources import spec


def test_preview_refuses_a_recorder_uid_clash_and_a_token_for_another_channel(
    example: ExampleStack,
) -> None:
    # The example: the recorder of `stage` subscribes to its own uid; and `lobby` is given
    # a token built for the stage's channel (a copied token).
    stage = example.sessions["stage"]
    stage["recordingConfig"]["subscribeVideoUids"] = ["1001", stage["uid"]]
    example.secrets[f"{PROJECT}:sessions.lobby.token"] = recorder_token(
        example.agora.app_id, stage["cname"], example.sessions["lobby"]["uid"])
    example.apply()
    problems = spec.stack_problems(example.stack_values(), default_app_id=example.agora.app_id)
    assert sorted(p.rule_id for p in problems) == ["recorder_uid_subscribed", "rtc_token_identity"]

    run = example.preview()

    assert not run.ok
    for problem in problems:
        assert f"{problem.dotted_path}: {problem.message} (rule {problem.rule_id};" in run.terminal
    assert example.secrets[f"{PROJECT}:sessions.lobby.token"] not in run.terminal
    assert example.agora.admin.request_log() == []
