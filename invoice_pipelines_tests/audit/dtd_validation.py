"""Validating index.xml against the description standard's DTD, two ways.

libxml2 (lxml) refuses the DTD as published: its `Media` content model, `(Name, Command*, Table*,
Command*, AcceptNoTables?)`, is not deterministic (after `Name` a `Command` may belong to either
`Command*`), which XML 1.0 asks of content models for compatibility. So lxml validates against
the DTD read from ../shared with that one model written as its deterministic equivalent, `(Name,
Command*, (Table+, Command*)?, AcceptNoTables?)`, which accepts exactly the same sequences. The
JDK's own parser (JAXP) takes the DTD unchanged; it validates too wherever `java` is installed."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

from lxml import etree

PUBLISHED_MEDIA = "<!ELEMENT Media (Name, Command*, Table*, Command*, AcceptNoTables?)>"
DETERMINISTIC_MEDIA = "<!ELEMENT Media (Name, Command*, (Table+, Command*)?, AcceptNoTables?)>"
JAVA_VALIDATOR = Path(__file__).with_name("ValidateDtd.java")


def lxml_errors(index: Path, dtd: Path) -> str | None:
    text = dtd.read_text(encoding="latin-1")
    assert PUBLISHED_MEDIA in text, "the DTD is not the published version 1.5"
    checked = etree.DTD(io.StringIO(text.replace(PUBLISHED_MEDIA, DETERMINISTIC_MEDIA)))
    if checked.validate(etree.parse(str(index))):
        return None
    return str(checked.error_log.filter_from_errors())


def java_errors(index: Path) -> str | None:
    """None when the JDK's parser finds index.xml valid against the DTD beside it (unchanged)."""
    done = subprocess.run(
        [shutil.which("java") or "java", str(JAVA_VALIDATOR), index.name],
        cwd=index.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return None if done.returncode == 0 else done.stdout + done.stderr
