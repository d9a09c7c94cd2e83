"""The docs stay true: every ```python block in docs/ runs (blocks of one page
share a namespace, in order), and every relative link in README.md and docs/
points at a file that exists, and at a heading of it where it names one."""

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").rglob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", [p for p in PAGES if BLOCK.search(p.read_text())],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_code_blocks_run(page, monkeypatch, capsys):
    if "inference.kernels" in page.read_text():
        from numba import cuda
        if not cuda.is_available():
            pytest.skip("kernel tutorial: needs a GPU or NUMBA_ENABLE_CUDASIM=1 (plain `tox` sets it)")
    monkeypatch.chdir(ROOT)
    namespace = {"__name__": "__doc__"}
    for i, block in enumerate(BLOCK.findall(page.read_text())):
        try:
            exec(compile(block, f"{page.name} block {i + 1}", "exec"), namespace)
        except Exception as e:
            raise AssertionError(f"{page.relative_to(ROOT)}, code block {i + 1} failed: {e!r}\n{block}") from e


@pytest.mark.parametrize("page", [ROOT / "README.md"] + PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        assert path.exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"
        if anchor and path.suffix == ".md":
            assert anchor in heading_anchors(path), f"{page.relative_to(ROOT)} links to {target}: no such heading"


def heading_anchors(page: Path) -> set[str]:
    """The #anchors of a Markdown page's headings, as GitHub makes them: lower case, only
    letters, digits, hyphens, underscores and spaces kept, spaces as hyphens; -1, -2 after repeats;
    a link in a heading counts by its text, as the page shows it."""
    seen, anchors = {}, set()
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)  # a "# comment" in code is no heading
    for title in re.findall(r"^#{1,6} +(.+?) *$", text, re.M):
        shown = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # [text](target) -> text
        anchor = re.sub(r"[^\w\- ]", "", shown.lower()).replace(" ", "-")
        anchors.add(f"{anchor}-{seen[anchor]}" if anchor in seen else anchor)
        seen[anchor] = seen.get(anchor, 0) + 1
    return anchors


def test_every_tutorial_is_in_the_index():
    index = (ROOT / "docs" / "index.md").read_text()
    for tutorial in sorted((ROOT / "docs" / "tutorials").glob("*.md")):
        assert f"tutorials/{tutorial.name}" in index, f"docs/index.md does not link {tutorial.name}"


def test_figures_referenced_by_docs_exist():
    for page in PAGES:
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name}: missing figure {target}"
    assert os.path.isdir(ROOT / "docs" / "figures")
