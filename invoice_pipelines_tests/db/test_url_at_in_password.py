"""A password may hold an unencoded `@` (or `/`, `:`, `?`): the URL is split on its last `@`.

`u:S3C@RETpw5@host` once printed `u:***@RETpw5@host` and "failed to resolve host 'RETpw5@...'":
half of the password on the screen and in run logs.
"""

from __future__ import annotations

import traceback

import pytest
from sqlalchemy import text

from invoice_pipelines.db.engine import _parse_url, database_url, make_engine
from invoice_pipelines.settings import ConfigError

UNREACHABLE = "postgresql://u:S3C@RETpw5@127.0.0.1:1/invoices"


@pytest.mark.parametrize(
    ("url", "user", "password", "host", "port", "database"),
    [
        ("postgresql://u:S3C@RETpw5@db.example/inv", "u", "S3C@RETpw5", "db.example", None, "inv"),
        ("postgresql+psycopg2://u:p/a:s?s@w@h:5433/d", "u", "p/a:s?s@w", "h", 5433, "d"),
        ("postgresql://u:S3C%40RET@h/d", "u", "S3C@RET", "h", None, "d"),
        ("postgresql://u@h/d", "u", None, "h", None, "d"),
        ("postgresql://h/d", None, None, "h", None, "d"),
        ("postgresql://u:@h/d", "u", "", "h", None, "d"),
    ],
)
def test_the_password_ends_at_the_last_at_sign(url, user, password, host, port, database) -> None:
    parsed = _parse_url(url)

    assert (parsed.username, parsed.password, parsed.host, parsed.port, parsed.database) == (
        user,
        password,
        host,
        port,
        database,
    )


def test_the_masked_url_hides_the_whole_password() -> None:
    url = "postgresql://u:S3C@RETpw5@db.example/invoices"

    assert database_url(url, redact=True) == "postgresql://u:***@db.example/invoices"
    # the normalized URL carries the password percent-encoded, so every later parse agrees
    assert database_url(url) == "postgresql://u:S3C%40RETpw5@db.example/invoices"


def test_an_unreachable_server_is_named_without_any_part_of_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        make_engine(UNREACHABLE)

    message = str(caught.value)
    assert message.startswith("cannot connect to postgresql://u:***@127.0.0.1:1/invoices ")
    whole = "".join(traceback.format_exception(caught.value))
    assert "S3C" not in whole and "RETpw5" not in whole


def test_a_password_with_an_at_sign_connects(pg_admin_url) -> None:
    """The test server trusts loopback, so any password connects: the host is what matters."""
    from sqlalchemy.engine import make_url

    server = make_url(pg_admin_url)
    url = server.set(password="S3C@RETpw5").render_as_string(hide_password=False)
    raw = url.replace("S3C%40RETpw5", "S3C@RETpw5")
    assert "S3C@RETpw5@" in raw

    engine = make_engine(raw, owner=True)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
