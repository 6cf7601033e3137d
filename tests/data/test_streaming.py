"""validate and card over files many batches long: the same counts, lines and verdicts as one batch."""

import json

import pytest

import prefkit.data.sources as sources
from prefkit.data.card import card_for_file
from prefkit.data.validate import validate_file

TURN = lambda role, text: [{"role": role, "content": text}]


def _row(i: int, pair_id: str | None = None) -> dict:
    return {
        "id": pair_id or f"p{i}",
        "source": "s",
        "prompt": TURN("user", f"question {i}"),
        "chosen": TURN("assistant", "a longer good answer" if i % 3 else "good"),
        "rejected": TURN("assistant", "bad"),
        "score_chosen": None,
        "score_rejected": None,
    }


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of about 4 KiB, so a file of a few hundred rows is read in dozens of them."""
    monkeypatch.setattr(sources, "BATCH_BYTES", 4096)


def _write(path, rows, broken: dict[int, str] = {}):
    lines = [broken.get(n, json.dumps(r)) for n, r in enumerate(rows, 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_validate_streams_a_file_of_many_batches_with_the_verdict_of_one(tmp_path, small_batches):
    rows = [_row(i) for i in range(600)]
    rows[450] = _row(450, pair_id="p3")  # the same id as line 4, many batches earlier
    rows[500]["chosen"] = TURN("assistant", " ")  # an empty reply
    path = _write(tmp_path / "pairs.jsonl", rows, broken={300: "{not json"})
    assert path.stat().st_size > 30 * 4096
    result = validate_file(path)
    by_check = {f.check: f for f in result.failures}
    assert result.rows == 600
    assert by_check["invalid_json"].lines == [300]
    assert by_check["field_uniqueness"].lines == [4, 451] and by_check["field_uniqueness"].rows == 2
    assert [f.lines for f in result.failures if f.check not in ("invalid_json", "field_uniqueness")] == [[501]]
    assert result.failing_rows == 4


def test_length_gap_and_card_of_many_batches_equal_one_batch(tmp_path, monkeypatch):
    path = _write(tmp_path / "train.jsonl", [_row(i) for i in range(600)])
    whole = validate_file(path)
    card_for_file(path, tmp_path / "one" / "README.md")
    monkeypatch.setattr(sources, "BATCH_BYTES", 4096)
    streamed = validate_file(path)
    card_for_file(path, tmp_path / "many" / "README.md")
    # 400 of the 600 chosen replies are 3 words longer than the rejected one ("bad").
    assert whole.length_gap.chosen_longer == streamed.length_gap.chosen_longer == round(400 / 600, 4)
    assert whole.length_gap == streamed.length_gap and whole.ok and streamed.ok
    one, many = ((tmp_path / d / "README.md").read_text() for d in ("one", "many"))
    assert one == many and "| s | 600 |" in one
