"""One request, one action (issue 87): a suspension asked on the launchpad and one asked in a
shell go through tenants/domain/actions.py `suspend`, so the run's log and the terminal say the
same sentence, a second request for the same reason says nothing changed both ways, and a
request a person can correct is refused in the same words: the run fails with them,
the command prints them with exit code 1. The run also records the organization's partition of
`organizations` as the suspension left it, with its checks evaluated on it (the command posts
the same to a webserver; quickbooks/test_commands_tell_dagster.py proves that side)."""

from __future__ import annotations

from dagster import AssetKey, DagsterInstance

from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.tenants.jobs import organizations_suspend_job


def _launchpad(db, tmp_path, slug: str, reason: str):
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
    config = {"organization": slug, "reason": reason, "requested_by": "anna"}
    result = organizations_suspend_job.execute_in_process(
        run_config={"ops": {"suspend_organization_op": {"config": config}}},
        instance=instance,
        resources={
            "system_database": db.system_engine,
            "upload_store": LocalUploads(str(tmp_path / "uploads")),
        },
        raise_on_error=False,
    )
    said = [entry.user_message for entry in instance.all_logs(result.run_id)]
    return result, [line for line in said if line.startswith(slug)]


def _shell(db, monkeypatch, capsys, slug: str, reason: str) -> tuple[int, list[str]]:
    from invoice_pipelines.cli import main

    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_DAGSTER_URL", "")  # no webserver to tell
    code = main(["organizations", "suspend", slug, "--reason", reason, "--by", "anna"])
    return code, capsys.readouterr().out.strip().splitlines()


def test_a_suspension_is_said_alike_on_the_launchpad_and_in_a_shell(
    db, tmp_path, monkeypatch, capsys
):
    there, here = db.new_organization()["slug"], db.new_organization()["slug"]

    run, logged = _launchpad(db, tmp_path, there, "unpaid")
    code, printed = _shell(db, monkeypatch, capsys, here, "unpaid")
    assert run.success and run.output_for_node("suspend_organization_op") is True
    assert code == 0
    assert [line.replace(there, "X") for line in logged] == [
        line.replace(here, "X") for line in printed
    ]
    assert printed == [
        f"{here}: suspended (unpaid): sensors, schedules and backfills request "
        "nothing for it; its uploads wait in its drop zone"
    ]
    # the run shows the organization as the suspension left it, its checks evaluated on it
    [shown] = [m for m in run.get_asset_materialization_events() if m.partition == there]
    assert shown.asset_key == AssetKey("organizations")
    facts = shown.materialization.metadata
    assert facts["state"].value == "suspended" and facts["suspension_reason"].value == "unpaid"
    evaluated = run.get_asset_check_evaluations()
    assert evaluated and {e.partition for e in evaluated} == {there}

    again, logged = _launchpad(db, tmp_path, there, "unpaid")
    code, printed = _shell(db, monkeypatch, capsys, here, "unpaid")
    assert again.output_for_node("suspend_organization_op") is False and code == 0
    assert logged == [f"{there}: suspended already, for this reason; nothing changed"]
    assert printed == [f"{here}: suspended already, for this reason; nothing changed"]
    assert not again.get_asset_materialization_events()  # nothing changed, nothing shown


def test_a_suspension_without_a_reason_is_refused_in_the_same_words_both_ways(
    db, tmp_path, monkeypatch, capsys
):
    slug = db.new_organization()["slug"]
    sentence = "say why (--reason): it is shown on the organization and in the sensors"

    run, _ = _launchpad(db, tmp_path, slug, "  ")
    assert not run.success
    failure = next(e for e in run.all_events if e.is_step_failure)
    assert failure.step_failure_data.error.message.strip().endswith(f": {sentence}")

    code, printed = _shell(db, monkeypatch, capsys, slug, "  ")
    assert code == 1 and printed == [f"refused: {sentence}"]
