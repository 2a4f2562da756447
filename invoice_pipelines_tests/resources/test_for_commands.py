"""A command's resources (`resources.for_commands.EnvResources`): the table of factories is read
at the first resource a command asks for, each resource is made once, and a name no area makes is
an AttributeError that names it."""

from __future__ import annotations

import pytest

from invoice_pipelines.resources.for_commands import EnvResources


def test_the_table_is_read_at_the_first_resource_and_each_is_made_once():
    calls = {"table": 0, "mailer": 0}

    def mailer():
        calls["mailer"] += 1
        return object()

    def table():
        calls["table"] += 1
        return {"mailer": mailer}

    resources = EnvResources(table, document_store="the test's store")
    assert calls == {"table": 0, "mailer": 0}  # built: nothing read yet
    assert resources.document_store == "the test's store"
    assert calls["table"] == 0  # a given resource needs no table
    first = resources.mailer
    assert resources.mailer is first
    assert calls == {"table": 1, "mailer": 1}
    with pytest.raises(AttributeError, match="no resource 'ocr' for a command"):
        _ = resources.ocr
    assert calls["table"] == 1


def test_a_plain_table_serves_as_well():
    resources = EnvResources({"database": lambda: "engine"})
    assert resources.database == "engine"
    assert not hasattr(resources, "_private")
