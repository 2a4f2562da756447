"""The readers' paths of child steps, walked child by child (`ValueReader`), find exactly what
lxml's `find` and `findall` find: the same elements, in the same order, also where the first
element of a step has none of the next and a later one has."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from invoice_pipelines.einvoice.readers.xmlsafe import ValueReader

A = "urn:test:a"
B = "urn:test:b"
NAMESPACES = {"a": A, "b": B}
TAGS = [f"{{{A}}}X", f"{{{A}}}Y", f"{{{B}}}X", f"{{{B}}}Z"]
PATHS = [
    "a:X",
    "b:X",
    "a:X/a:Y",
    "a:X/b:X",
    "a:Y/b:Z/a:X",
    "a:X/a:X/a:Y",
    "b:Z/a:Y",
    # not child steps only: read by lxml's find as before
    ".//a:Y",
    "a:X[1]",
    "*/a:Y",
    "a:X/..",
]

trees = st.recursive(
    st.sampled_from(TAGS).map(lambda tag: (tag, [])),
    lambda children: st.tuples(st.sampled_from(TAGS), st.lists(children, max_size=4)),
    max_leaves=25,
)


def _build(spec, parent=None):
    tag, children = spec
    node = etree.Element(tag) if parent is None else etree.SubElement(parent, tag)
    for index, child in enumerate(children):
        _build(child, node)
        if index % 2:
            node.append(etree.Comment("between"))
    return node


@settings(max_examples=200, deadline=None)
@given(trees)
def test_child_paths_find_what_lxml_finds(spec):
    root = _build(spec)
    read = ValueReader(NAMESPACES)
    for node in [root, *root.iter(TAGS)]:
        for path in PATHS:
            assert read.element(node, path) is node.find(path, NAMESPACES), path
            assert read.elements(node, path) == node.findall(path, NAMESPACES), path


def test_a_later_parent_holds_the_first_match():
    root = etree.fromstring(
        f'<r xmlns:a="{A}"><a:X><a:Z/></a:X><a:X><a:Y>second</a:Y></a:X><a:X><a:Y>third</a:Y>'
        "</a:X></r>"
    )
    read = ValueReader(NAMESPACES)
    assert read.text(root, "a:X/a:Y") == "second"
    assert [e.text for e in read.elements(root, "a:X/a:Y")] == ["second", "third"]
    assert read.element(root, "a:X/a:Q") is None
    assert read.element(None, "a:X") is None and read.elements(None, "a:X") == []
