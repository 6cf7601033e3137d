"""The data commands write what they wrote before they streamed (issue 30): every output file and
result of validate, card, dedupe and mix on the sample and on ../shared/data, against the digests
that ``tests/data/same_outputs.py`` wrote at c3f00c3."""

import json
from pathlib import Path

from tests.data.same_outputs import SHARED, run_all

EXPECTED = json.loads((Path(__file__).parent / "same_outputs.json").read_text())


def test_every_output_is_byte_identical_to_the_in_memory_version(tmp_path):
    found = run_all(tmp_path)
    cases = ["sample", "real"] if SHARED.is_dir() else ["sample"]
    for case in cases:
        names = EXPECTED[case].keys() | found[case].keys()
        changed = sorted(k for k in names if EXPECTED[case].get(k) != found[case].get(k))
        assert changed == [], f"{case}: outputs differ from c3f00c3's: {changed}"
    assert len(found["sample"]) == len(EXPECTED["sample"]) > 20
