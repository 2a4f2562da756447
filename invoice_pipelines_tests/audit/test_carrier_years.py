"""Issue 85, point 7: audit_data_carrier's years follow the organizations' data. The partitions
ended with the last complete year while a fresh demo's data are all of the running year, so its
one carrier held nothing of them; the running year is a partition too (its carrier holds the
year so far)."""

from datetime import UTC, datetime

from invoice_pipelines.audit.partitions import fiscal_year_partitions


def test_the_running_year_is_a_carrier_partition():
    running = str(datetime.now(UTC).year)
    keys = fiscal_year_partitions.get_partition_keys()
    assert keys[-1] == running
    assert str(int(running) - 1) in keys
