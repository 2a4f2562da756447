"""Ticking a period's sensor (lib/sensors.py `period_runs_sensor`) as the daemon does: one
evaluation after another, each with the cursor the one before left."""

from __future__ import annotations

from dagster import build_sensor_context


def tick(sensor, instance, engine, cursor: str | None):
    """One evaluation of `sensor` with `cursor`, `engine` its system engine: its SensorResult."""
    with build_sensor_context(
        instance=instance, cursor=cursor, resources={"system_database": engine}
    ) as context:
        return sensor(context)


def every_tick(sensor, instance, engine, cursor: str | None, most: int = 200) -> list:
    """The results of the ticks from `cursor` until one requests nothing (that one last)."""
    results = []
    for _ in range(most):
        result = tick(sensor, instance, engine, cursor)
        results.append(result)
        cursor = result.cursor
        if not result.run_requests:
            return results
    raise AssertionError(f"still requesting after {most} ticks")
