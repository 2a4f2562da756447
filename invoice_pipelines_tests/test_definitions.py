"""The code location loads, and its graph holds what the areas promise (catches accidental changes)."""

from dagster import Definitions

from invoice_pipelines.definitions import defs

# The whole graph, not a subset: an accidental addition or removal fails here.
EXPECTED_ASSETS = {
    "mailbox_messages": [],
    "uploads": ["mailbox_messages"],
    "incoming_invoices": ["uploads"],
    "supplier_register": [],
    "sales_orders": [],
    "sales_invoices": ["sales_orders"],
    "incoming_invoice_exports": ["incoming_invoices"],
    "sales_invoice_exports": ["sales_invoices"],
    "audit_data_carrier": ["incoming_invoices", "sales_invoices"],
    "sales_invoice_documents": ["sales_invoices"],
    "invoice_emails": ["sales_invoice_documents"],
    "invoice_text_messages": ["sales_invoice_documents"],
    "peppol_participants": [],
    "peppol_sent_documents": ["invoice_emails", "peppol_participants"],
    "peppol_received_documents": ["incoming_invoices", "peppol_participants"],
    "peppol_monthly_report": ["peppol_received_documents", "peppol_sent_documents"],
    "qbo_customers": [],
    "qbo_items": [],
    "qbo_invoices": ["qbo_customers", "qbo_items", "sales_invoices"],
    "qbo_payments": ["qbo_invoices"],
    "qbo_vendors": ["incoming_invoices"],
    "qbo_bills": ["incoming_invoices", "qbo_vendors"],
    "qbo_bill_payments": ["qbo_bills"],
    "receivables": ["qbo_payments", "sales_invoices"],
    "dunning_notices": ["receivables"],
    "organizations": [],
}
EXPECTED_CHECKS = {
    "organizations:organizations_ready",
    "organizations:no_uploads_held",
    "incoming_invoices:no_failed_documents",
    "incoming_invoices:no_stuck_documents",
    "incoming_invoices:no_documents_waiting_for_review",
    "incoming_invoices:validated_invoices_exportable",
    "incoming_invoices:discounts_not_expiring",
    "mailbox_messages:mailbox_fresh",
    "supplier_register:suppliers_told_apart",
    "supplier_register:booked_documents_from_registered_suppliers",
    "sales_invoices:gapless_invoice_numbers",
    "sales_invoices:totals_consistent",
    "sales_invoices:gapless_invoice_numbers_all_organizations",
    "sales_invoices:totals_consistent_all_organizations",
    "sales_invoices:reviewed_orders_invoiced",
    "incoming_invoice_exports:every_invoice_booked",
    "sales_invoice_exports:every_invoice_booked",
    "audit_data_carrier:carrier_complete",
    "audit_data_carrier:archive_unchanged",
    "sales_invoice_documents:documents_valid",
    "invoice_emails:no_unknown_deliveries",
    "peppol_sent_documents:peppol_undelivered",
    "peppol_received_documents:peppol_unanswered",
    "qbo_customers:tokens_not_expiring",
    "qbo_customers:company_switch",
    "qbo_bills:bills_waiting",
    "qbo_bills:bill_amounts_agree",
    "dunning_notices:last_run_fresh",
}
EXPECTED_SENSORS = {
    "checks_first_evaluation_sensor",
    "organizations_sensor",
    "upload_sensor",
    "intake_failure_sensor",
    "mailbox_sensor",
    "batch_jobs_sensor",
    "documents_sensor",
    "qbo_push_sensor",
    "qbo_bill_push_sensor",
    "qbo_webhook_sensor",
    "invoice_batch_jobs_sensor",
    "communications_batch_jobs_sensor",
    "dead_runs_sensor",
    "monthly_exports_sensor",
    "dunning_sensor",
}
EXPECTED_SCHEDULES = {
    "archive_checks_schedule",
    "incoming_invoices_checks_schedule",
    "supplier_notices_schedule",
    "fail_stuck_batch_jobs_schedule",
    "sales_invoices_checks_schedule",
    "qbo_payments_schedule",
    "qbo_customers_schedule",
    "qbo_items_schedule",
    "qbo_vendors_schedule",
    "qbo_bill_payments_schedule",
    "qbo_checks_schedule",
    "dunning_checks_schedule",
    "peppol_checks_schedule",
    "archive_retention_schedule",
    "dagster_run_retention_schedule",
}
EXPECTED_JOBS = {
    "intake_job",
    "retry_failed_invoices_job",
    "incoming_invoices_checks_job",
    "review_incoming_invoice_job",
    "supplier_notices_job",
    "change_supplier_register_job",
    "confirm_supplier_job",
    "batch_invoicing_job",
    "fail_stuck_batch_jobs_job",
    "batch_job_control_job",
    "sales_invoices_checks_job",
    "credit_note_job",
    "export_job",
    "audit_export_job",
    "archive_checks_job",
    "reopen_exported_invoices_job",
    "history_import_job",
    "documents_job",
    "send_invoices_job",
    "send_text_messages_job",
    "peppol_checks_job",
    "qbo_customers_job",
    "qbo_items_job",
    "qbo_invoices_job",
    "qbo_payments_job",
    "qbo_vendors_job",
    "qbo_bills_job",
    "qbo_bill_payments_job",
    "qbo_push_bills_job",
    "qbo_checks_job",
    "qbo_resolve_conflict_job",
    "invoice_batch_job",
    "communications_batch_job",
    "dunning_job",
    "dunning_checks_job",
    "dunning_block_job",
    "archive_retention_job",
    "dagster_run_retention_job",
    "organizations_add_job",
    "organizations_change_job",
    "organizations_suspend_job",
    "organizations_resume_job",
    "organizations_offboard_job",
}


def test_definitions_are_loadable():
    Definitions.validate_loadable(defs)


def test_the_code_location_holds_exactly_the_expected_objects():
    repo = defs.get_repository_def()
    graph = defs.resolve_asset_graph()
    lineage = {
        key.to_user_string(): sorted(p.to_user_string() for p in graph.get(key).parent_keys)
        for key in graph.get_all_asset_keys()
    }
    assert lineage == EXPECTED_ASSETS
    assert {k.to_user_string() for k in graph.asset_check_keys} == EXPECTED_CHECKS
    assert {s.name for s in repo.sensor_defs} == EXPECTED_SENSORS
    assert {s.name for s in repo.schedule_defs} == EXPECTED_SCHEDULES
    # Dagster's own hidden asset job is not ours to list
    jobs = {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")}
    assert jobs == EXPECTED_JOBS


EXPECTED_RESOURCES = {
    "database",
    "system_database",
    "upload_store",
    "export_store",
    "document_store",
    "ocr_engine",
    "document_parser",
    "mailer",
    "text_messages",
    "peppol_access_point",
    "letter_writer",
    "quickbooks",
    "document_renderer",
    "io_manager",
    "batch_kinds",
}


def _required_keys(area_defs: Definitions) -> set[str]:
    """The resource keys an area's assets, checks, sensors, schedules and op jobs require."""
    keys: set[str] = set()
    parts = [
        *(area_defs.assets or []),
        *(area_defs.asset_checks or []),
        *(area_defs.sensors or []),
        *(area_defs.schedules or []),
    ]
    for part in parts:
        keys |= set(getattr(part, "required_resource_keys", None) or ())
    for job in area_defs.jobs or []:
        graph = getattr(job, "graph", None)  # an asset job's are its assets'
        for node in graph.node_defs if graph is not None else ():
            keys |= set(node.required_resource_keys)
    return keys - {"io_manager"}


def test_the_resources_are_the_areas_table_and_each_area_names_what_its_runs_need():
    """The code location binds exactly the resources the areas make (`areas.resources()`, the
    table the commands take theirs from too) and the areas' kinds (`batch_kinds`, which the
    commands get too), and each area's `AREA.needs` names every resource its own definitions
    require: an area that needs a resource nobody makes fails here."""
    from invoice_pipelines.areas import AREAS, command_resources, kinds, resources

    assert set(defs.resources) == EXPECTED_RESOURCES == {*resources(), "io_manager", "batch_kinds"}
    assert "batch_kinds" in command_resources()
    # the runs' kinds are the areas', as a command's are
    assert sorted(defs.resources["batch_kinds"]) == sorted(kinds())
    for area in AREAS:
        if area.definitions is not None:
            missing = _required_keys(area.load_definitions()) - area.needs
            assert not missing, f"{area.name}/area.py does not name {sorted(missing)} in needs"


def test_the_catalog_explains_itself():
    """Every asset, job, sensor and schedule says what it is; assets carry group, kinds, owners
    and a link to their source."""
    repo = defs.get_repository_def()
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        name = key.to_user_string()
        assert node.description, name
        assert node.group_name in {
            "intake",
            "billing",
            "exports",
            "documents",
            "delivery",
            "peppol",
            "quickbooks",
            "overdue",
            "organizations",
            "audit",
        }, name
        assert node.kinds, name
        assert node.owners, name
        assert "dagster/code_references" in node.metadata, name
        if node.is_materializable:
            # partitioned by organization, like every per-tenant asset (monthly outputs by
            # organization x month)
            partitions = node.partitions_def
            dimensions = getattr(partitions, "partitions_defs", None)
            names = (
                {getattr(d.partitions_def, "name", None) for d in dimensions}
                if dimensions
                else {partitions.name}
            )
            assert "organizations" in names, name
    for definition in [*repo.get_all_jobs(), *repo.sensor_defs, *repo.schedule_defs]:
        if not definition.name.startswith("__"):
            assert definition.description, definition.name


def test_demo_sensors_and_schedules_start_running():
    from dagster import DefaultScheduleStatus, DefaultSensorStatus

    repo = defs.get_repository_def()
    for sensor in repo.sensor_defs:
        if sensor.name in EXPECTED_SENSORS:
            assert sensor.default_status == DefaultSensorStatus.RUNNING, sensor.name
    for schedule in repo.schedule_defs:
        if schedule.name in EXPECTED_SCHEDULES:
            assert schedule.default_status == DefaultScheduleStatus.RUNNING, schedule.name


def test_loading_the_code_location_warns_about_nothing():
    """Every run loads the code again: a warning here is printed into every run's log."""
    import subprocess
    import sys

    script = (
        "from invoice_pipelines.definitions import defs\n"
        "repo = defs.get_repository_def()\n"
        "repo.get_sensor_def('upload_sensor'); repo.get_sensor_def('batch_jobs_sensor')\n"
        "repo.get_all_jobs(); defs.resolve_asset_graph()\n"
    )
    # -W error: any warning (BetaWarning, SupersessionWarning, deprecations) fails the import
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stderr == ""


def test_sensors_launch_their_jobs():
    repo = defs.get_repository_def()
    assert repo.get_sensor_def("upload_sensor").job_name == "intake_job"
    assert repo.get_sensor_def("batch_jobs_sensor").job_name == "batch_invoicing_job"


def test_work_jobs_run_only_their_asset_not_the_scheduled_checks():
    """An asset job runs every check of its asset unless told otherwise: the all-organizations
    audit and the stuck-document check must not ride along with every intake or batch run."""
    for job_name, node in (
        ("intake_job", "incoming_invoices"),
        ("retry_failed_invoices_job", "incoming_invoices"),
        ("batch_invoicing_job", "sales_invoices"),
    ):
        assert list(defs.resolve_job_def(job_name).graph.node_dict) == [node], job_name


def test_every_job_runs_its_steps_in_the_runs_process():
    """Backfills and the UI's Materialize run Dagster's asset job: with Dagster's default executor
    each step of them started a fresh interpreter (41-143 s to a backfill run's first step,
    issue 55). Every job, the asset job included, runs in process."""
    repo = defs.get_repository_def()
    executors = {job.name: job.executor_def.name for job in repo.get_all_jobs()}
    assert any(name.startswith("__ASSET_JOB") for name in executors)
    assert {name: e for name, e in executors.items() if e != "in_process"} == {}
