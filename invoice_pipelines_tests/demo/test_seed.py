"""seed-demo creates three realistic organizations once."""

from sqlalchemy import func, select

from invoice_pipelines.db.tables import customers, organizations, sales_order_lines, sales_orders
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines.demo.seed import seed_demo


def _counts(engine):
    with system_transaction(engine) as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (organizations, customers, sales_orders, sales_order_lines)
        )


def test_seed_demo_is_idempotent_and_realistic(tmp_path):
    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    upgrade(make_engine(url, owner=True))
    engine = make_engine(url)
    first = seed_demo(engine)
    assert len(first["created"]) == 3
    assert len(first["batch_jobs"]) == 1  # queued for the batch_jobs_sensor
    counts = _counts(engine)
    assert counts[0] == 3 and counts[1] >= 12 and counts[2] >= 60
    again = seed_demo(engine)
    assert again["created"] == [] and again["batch_jobs"] == []
    assert _counts(engine) == counts
    with system_transaction(engine) as conn:
        currencies = set(conn.execute(select(organizations.c.currency)).scalars())
        statuses = set(conn.execute(select(sales_orders.c.status)).scalars())
    assert currencies == {"EUR", "USD"}
    assert "reviewed" in statuses and "pending" in statuses
