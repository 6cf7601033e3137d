"""The README's promises: its Python example runs as written, and it names the commands `prefkit --help` lists."""

import re

from click.testing import CliRunner

from prefkit.cli import main
from tests.conftest import PROJECT

README = (PROJECT / "README.md").read_text(encoding="utf-8")


def test_the_readme_is_short():
    assert len(README.splitlines()) < 150


def test_the_readme_and_prefkit_help_name_the_same_commands():
    listed = set(main.commands)
    in_help = set(re.findall(r"^    (\w+)\s{2,}", CliRunner().invoke(main, ["--help"]).output, re.MULTILINE))
    in_readme = set(re.findall(r"`prefkit (\w+)`", README))
    assert in_help == listed
    assert in_readme == listed, f"README lacks {listed - in_readme}, names unknown {in_readme - listed}"


def test_every_docs_link_in_the_readme_exists():
    for target in re.findall(r"\]\((docs/[\w.-]+\.md)", README):
        assert (PROJECT / target).is_file(), target


def test_counts_in_the_docs_are_the_codes():
    """The number of reject reasons and formats the README states, and the reasons docs/formats.md
    lists, are the code's: a new reason or format fails here until the docs say it."""
    from prefkit.data.adapters import FORMATS
    from prefkit.data.reasons import RejectReason

    text = " ".join(README.split())
    assert re.search(rf"rejected with one of {len(RejectReason)} reasons", text)
    assert re.search(rf"{len(FORMATS)} formats \(`--format`\)", text)
    formats_doc = (PROJECT / "docs" / "formats.md").read_text(encoding="utf-8")
    listed = formats_doc.split("Reasons:", 1)[1].split("One bad line", 1)[0]
    assert set(re.findall(r"`(\w+)`", listed)) == {str(r) for r in RejectReason}
    in_table = re.findall(r"^\| `([\w-]+)`", formats_doc, re.MULTILINE)
    assert sorted(in_table) == sorted(f.name for f in FORMATS)
