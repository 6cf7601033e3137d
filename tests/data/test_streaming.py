"""validate, card, mix and dedupe over files many batches long: the same counts, lines, verdicts and
files as one batch."""

import json

import pytest

from prefkit.data import sources
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


def _write(path, rows, broken: dict[int, str] | None = None):
    lines = [(broken or {}).get(n, json.dumps(r)) for n, r in enumerate(rows, 1)]
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


def _mix_and_dedupe(src, out):
    import prefkit

    mixed = prefkit.mix([str(src)], out / "mix", test_size=0.2, near=True, seed=5)
    deduped = prefkit.dedupe(src, out / "dedupe.jsonl", prompt=True, near=True, near_threshold=0.5)
    return mixed, deduped


def test_mix_and_dedupe_of_many_batches_write_what_one_batch_writes(tmp_path, monkeypatch):
    rows = [_row(i) for i in range(600)]
    for i in range(0, 600, 10):  # every tenth prompt asks what an earlier one asked, in another batch
        rows[i]["prompt"] = TURN("user", f"question {i // 10}")
        rows[i]["chosen"] = TURN("assistant", f"good answer {i}")
    src = _write(tmp_path / "pairs.jsonl", rows, broken={300: "{not json"})
    one_mix, one_dedupe = _mix_and_dedupe(src, tmp_path / "one")
    monkeypatch.setattr(sources, "BATCH_BYTES", 4096)
    many_mix, many_dedupe = _mix_and_dedupe(src, tmp_path / "many")
    assert src.stat().st_size > 30 * 4096
    one_files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    many_files = sorted(p.relative_to(tmp_path / "many") for p in (tmp_path / "many").rglob("*") if p.is_file())
    assert one_files == many_files and not [p for p in one_files if ".prefkit-pool" in str(p)]
    for name in one_files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "many" / name).read_bytes(), name
    (reject,) = (tmp_path / "many" / "mix" / "rejects.jsonl").read_text().splitlines()
    assert json.loads(reject)["line"] == 300
    # Row 10k asks "question k", which row k still asks unless k is a multiple of 10: 54 repeats of
    # questions 1-59 (but 10-50), many batches after the row they repeat. Exact dedupe finds none.
    assert many_dedupe.read == 600 and many_dedupe.rejected == 1
    assert many_dedupe.removed == {"prompt": 54} and many_dedupe.written == 545
    c = many_mix.sources[0]
    assert c.rejected == 1 and c.deduped == 54 and many_mix.train + many_mix.test == 545 == c.kept  # near: the same 54
    # No prompt in both splits, read from the files the mix wrote.
    sides = [
        {json.loads(line)["prompt"][-1]["content"] for line in (tmp_path / "many" / "mix" / f).read_text().splitlines()}
        for f in ("train.jsonl", "test.jsonl")
    ]
    assert not sides[0] & sides[1] and len(sides[1]) > 0
