"""The README and docs/ document every setting the code reads, the commands they promise exist,
their links lead somewhere, and the layout table matches the tree."""

import re
from pathlib import Path

from invoice_pipelines.cli import build_parser
from invoice_pipelines.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = {path.name: path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))}
CONFIGURATION = DOCS["configuration.md"]


def test_every_setting_is_in_the_configuration_table():
    for setting in SETTINGS:
        for name in setting.name.split(" / "):
            assert f"`{name}`" in CONFIGURATION, (
                f"{name} missing from the configuration table (docs/configuration.md)"
            )


def test_documented_commands_exist():
    sub = build_parser()._subparsers._group_actions[0].choices
    for command in (
        "migrate",
        "seed-demo",
        "parse",
        "batch-invoice",
        "batch-status",
        "batch-list",
        "batch-cancel",
        "batch-retry",
        "batch-documents",
        "batch-send",
        "batch-run",
        "bench",
    ):
        assert command in sub
        assert f"invoice-pipelines {command}" in README + "".join(DOCS.values()), command


NUMBER_WORDS = {3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


def test_the_tour_the_readme_describes_is_the_one_make_run_prints():
    """The README named a four-line tour while make run printed five entries: the count and the
    names come from the tour in scripts/run-dagster.sh."""
    script = (ROOT / "scripts" / "run-dagster.sh").read_text()
    tour = script[script.index("<<TOUR") : script.index("\nTOUR\n")]
    names = re.findall(r"^  \d+\. (\w+)", tour, re.MULTILINE)
    assert [int(n) for n in re.findall(r"^  (\d+)\. ", tour, re.MULTILINE)] == list(
        range(1, len(names) + 1)
    )
    described = f"a tour of {NUMBER_WORDS[len(names)]} places ({', '.join(names)}:"
    assert described in " ".join(README.split()), described


def _markdown_files():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _outside_code(text):
    """The text without fenced code blocks and inline code: links there are examples."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def github_anchor(heading):
    """GitHub's anchor of a heading: lower case, spaces to '-', punctuation except '-' and '_'
    dropped (the heading's rendered text: no backticks, emphasis or link targets)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").replace("*", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path):
    seen, result = {}, set()
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.MULTILINE | re.DOTALL)
    for heading in re.findall(r"^#{1,6} (.+?)\s*#*\s*$", text, re.MULTILINE):
        anchor = github_anchor(heading)
        n = seen.get(anchor, 0)
        seen[anchor] = n + 1
        result.add(anchor if n == 0 else f"{anchor}-{n}")
    return result


def test_every_relative_link_points_at_a_file_and_heading_that_exist():
    broken = []
    for page in _markdown_files():
        for target in re.findall(
            r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", _outside_code(page.read_text())
        ):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_anchor_rule():
    assert (
        github_anchor("Recovery: one mechanism per failure") == "recovery-one-mechanism-per-failure"
    )
    assert github_anchor("Batch invoicing (sales orders -> sales invoices)") == (
        "batch-invoicing-sales-orders---sales-invoices"
    )
    assert github_anchor("`dunning_notices` and the e-mail") == "dunning_notices-and-the-e-mail"


LAYOUT = ROOT / "docs" / "layout.md"


def test_the_layout_names_every_top_level_package_and_only_paths_that_exist():
    rows = [line for line in LAYOUT.read_text().splitlines() if line.startswith("| `")]
    named = [p for row in rows for p in re.findall(r"`([^`]+)`", row.split("|")[1])]
    assert named
    missing = [p for p in named if not (ROOT / p).exists()]
    assert not missing, f"docs/layout.md names paths that do not exist: {missing}"
    package = ROOT / "invoice_pipelines"
    top_level = [
        f"invoice_pipelines/{p.name}/" if p.is_dir() else f"invoice_pipelines/{p.name}"
        for p in sorted(package.iterdir())
        if (p.is_dir() and (p / "__init__.py").exists())
        or (p.suffix == ".py" and p.name != "__init__.py")
    ]
    absent = [p for p in top_level if p not in named]
    assert not absent, f"docs/layout.md has no row for {absent}"


def test_every_paragraph_of_the_readme_is_at_most_120_words():
    """A newcomer reads paragraphs of at most 120 words (issue 85: the one on how fast a dropped
    invoice is read ran to 149). Code blocks and tables are not paragraphs."""
    import re

    text = re.sub(r"```.*?```", "", (ROOT / "README.md").read_text(), flags=re.DOTALL)
    long = {
        " ".join(paragraph.split()[:8]): len(paragraph.split())
        for paragraph in re.split(r"\n\s*\n", text)
        if not paragraph.lstrip().startswith("|") and len(paragraph.split()) > 120
    }
    assert long == {}
