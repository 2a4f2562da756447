"""The incoming-invoice lifecycle: allowed transitions, refusals with a clear message, labels."""

import pytest

from invoice_pipelines.core.lifecycle import (
    TRANSITIONS,
    InvalidTransition,
    Status,
    can_process,
    can_transition,
    check_transition,
    color,
    description,
    is_terminal,
    label,
    next_status,
)

ALLOWED = {
    ("UPLOADED", "CREATED"),
    ("UPLOADED", "PARSED"),
    ("UPLOADED", "FAILED"),
    ("CREATED", "PARSED"),
    ("CREATED", "FAILED"),
    ("PARSED", "VALIDATED"),
    ("PARSED", "FAILED"),
    ("PARSED", "NEEDS_REVIEW"),
    ("NEEDS_REVIEW", "VALIDATED"),
    ("NEEDS_REVIEW", "FAILED"),
    ("NEEDS_REVIEW", "CREATED"),
    ("VALIDATED", "EXPORTED"),
    ("VALIDATED", "FAILED"),
    ("VALIDATED", "NEEDS_REVIEW"),  # reopened for review before it is exported
    ("EXPORTED", "VALIDATED"),
    ("EXPORTED", "FAILED"),
    ("FAILED", "CREATED"),
}


@pytest.mark.parametrize("src", list(Status))
@pytest.mark.parametrize("dst", list(Status))
def test_exactly_the_documented_transitions_are_allowed(src, dst):
    if (src.value, dst.value) in ALLOWED:
        assert check_transition(src, dst) == dst
    else:
        with pytest.raises(InvalidTransition, match=f"from {src} to {dst}"):
            check_transition(src, dst)


def test_transition_table_matches_documentation():
    assert {(s.value, d.value) for s, ds in TRANSITIONS.items() for d in ds} == ALLOWED


def test_unknown_status_is_refused_clearly():
    with pytest.raises(InvalidTransition, match="unknown status 'ARCHIVED'"):
        check_transition("ARCHIVED", "FAILED")
    assert not can_transition("VALIDATED", "UPLOADED")


def test_helpers_for_people_and_ui():
    assert label("FAILED", "de") == "Fehlgeschlagen" and label("FAILED") == "Failed"
    assert "Export" in description("VALIDATED", "de")
    assert all(color(s).startswith("#") and len(color(s)) == 7 for s in Status)
    assert len({color(s) for s in Status}) == len(Status)
    assert is_terminal("EXPORTED") and is_terminal("FAILED") and not is_terminal("PARSED")
    assert can_process("UPLOADED") and can_process("CREATED") and not can_process("VALIDATED")
    assert next_status("UPLOADED") == Status.PARSED
    assert next_status("VALIDATED") == Status.EXPORTED
    assert next_status("FAILED") == Status.CREATED
    assert next_status("EXPORTED") is None
