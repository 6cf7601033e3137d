"""``prefkit audit``: planted label flips found, every dropped or flipped pair accounted for, and
cross-fitting that never lets a model judge a prompt it trained on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from prefkit.cli import main
from prefkit.data.sample_data import sample_pairs
from prefkit.errors import UsageError
from prefkit.lm.audit import AuditConfig, audit, votes
from tests.conftest import read_jsonl, write_canonical


def msg(role: str, text: str) -> list[dict]:
    return [{"role": role, "content": text}]


@pytest.fixture
def planted(tmp_path):
    """60 sample pairs (every task kind), 12 of them (20%) with chosen and rejected swapped."""
    pairs = sample_pairs(60, seed=5)
    flips = set(np.random.default_rng(0).choice(60, size=12, replace=False).tolist())
    rows = [
        (
            msg("user", p.prompt),
            *(msg("assistant", t) for t in ((p.rejected, p.chosen) if i in flips else (p.chosen, p.rejected))),
        )
        for i, p in enumerate(pairs)
    ]
    return write_canonical(tmp_path / "pairs.jsonl", rows), {f"p{i}" for i in flips}


def test_votes_by_margin_and_missing_scores():
    chosen = np.array([2.0, 1.0, 1.0, np.nan, 0.0])
    rejected = np.array([1.0, 2.0, 1.2, 0.0, np.nan])
    assert votes(chosen, rejected, margin=0.5).tolist() == ["chosen", "rejected", "tie", "none", "none"]


def test_the_verifier_flags_exactly_the_planted_flips_and_drop_accounts_for_each(planted, tmp_path):
    path, flipped = planted
    result = audit(
        AuditConfig(file=str(path), output=str(tmp_path / "clean.jsonl"), scorers=["verify:sample_task"], action="drop")
    )
    assert set(result.flagged_ids) == flipped and result.flagged == 12
    assert (result.pairs, result.written, result.dropped) == (60, 48, 12)
    (votes_,) = result.scorers
    assert (votes_.prefers_chosen, votes_.prefers_rejected, votes_.ties, votes_.no_vote) == (48, 12, 0, 0)
    kept = read_jsonl(tmp_path / "clean.jsonl")
    assert {r["id"] for r in kept} == {f"p{i}" for i in range(60)} - flipped
    rejects = read_jsonl(tmp_path / "clean.rejects.jsonl")
    assert sorted(r["record"]["id"] for r in rejects) == sorted(flipped)
    assert {r["reason"] for r in rejects} == {"flagged_label"}
    flagged = read_jsonl(tmp_path / "clean.flagged.jsonl")
    assert {f["id"] for f in flagged} == flipped
    first = flagged[0]["scores"]["sample_task"]
    assert (first["chosen"], first["rejected"], first["vote"]) == (0.0, 1.0, "rejected")
    report = json.loads((tmp_path / "clean.report.json").read_text())
    assert report["by_source"] == {"test": {"pairs": 60, "flagged": 12}}


def test_flip_restores_the_planted_labels_and_flag_keeps_every_pair(planted, tmp_path):
    path, flipped = planted
    original = {p.prompt: p.chosen for p in sample_pairs(60, seed=5)}
    result = audit(
        AuditConfig(file=str(path), output=str(tmp_path / "f.jsonl"), scorers=["verify:sample_task"], action="flip")
    )
    rows = read_jsonl(tmp_path / "f.jsonl")
    assert result.flipped == 12 and len(rows) == 60
    assert all(r["chosen"][0]["content"] == original[r["prompt"][0]["content"]] for r in rows)
    assert {r["id"] for r in rows if r["metadata"]["audit"] == "flipped"} == flipped
    audit(AuditConfig(file=str(path), output=str(tmp_path / "m.jsonl"), scorers=["verify:sample_task"]))
    marked = read_jsonl(tmp_path / "m.jsonl")
    assert len(marked) == 60 and {r["id"] for r in marked if r["metadata"]["audit"] == "flagged"} == flipped
    assert read_jsonl(tmp_path / "m.rejects.jsonl") == []
    from prefkit.api import card

    text = Path(card(tmp_path / "m.jsonl", tmp_path / "card" / "README.md").card).read_text()
    assert "## Audit" in text and "| test | 60 | 12 | 0 |" in text.replace("  ", " ")
    assert "Not audited" in Path(card(path, tmp_path / "card2" / "README.md").card).read_text()


def test_min_agree_counts_scorers_and_a_silent_scorer_never_flags(tmp_path):
    path = write_canonical(
        tmp_path / "p.jsonl",
        [
            (msg("user", "What is 2 + 3?"), msg("assistant", "6"), msg("assistant", "5")),  # wrong label
            (msg("user", "Write a poem."), msg("assistant", "Roses."), msg("assistant", "No.")),  # no verifier vote
        ],
    )
    both = ["verify:sample_task", "n=verify:number"]
    # verify:number has no reference here, so it never votes: requiring both flags nothing.
    result = audit(AuditConfig(file=str(path), output=str(tmp_path / "a.jsonl"), scorers=both))
    assert result.flagged == 0 and result.min_agree == 2
    result = audit(AuditConfig(file=str(path), output=str(tmp_path / "b.jsonl"), scorers=both, min_agree=1))
    assert result.flagged_ids == ["p0"]
    assert {s.name: s.no_vote for s in result.scorers} == {"sample_task": 1, "n": 2}
    with pytest.raises(UsageError, match="only 2 scorers"):
        AuditConfig(file=str(path), output=str(tmp_path / "c.jsonl"), scorers=both, min_agree=3)
    with pytest.raises(UsageError, match="--cross-fit needs --recipe"):
        AuditConfig(file=str(path), output=str(tmp_path / "c.jsonl"), cross_fit=2)


def test_cross_fit_never_scores_a_pair_with_a_model_that_saw_its_prompt(tiny_model_dir, tmp_path):
    from prefkit.data.keys import prompt_key

    # 24 pairs over 8 prompts (three pairs each), so folds must keep a prompt's pairs together.
    pairs = sample_pairs(8, seed=2)
    rows = [
        (msg("user", p.prompt), msg("assistant", p.chosen + " " * k), msg("assistant", p.rejected))
        for p in pairs
        for k in range(3)
    ]
    path = write_canonical(tmp_path / "pairs.jsonl", rows)
    recipe = tmp_path / "rm.yaml"
    recipe.write_text(
        f"model: {tiny_model_dir}\ndata:\n  train: unused.jsonl\noutput_dir: unused\n"
        "max_steps: 1\nper_device_train_batch_size: 4\nmax_length: 128\nbf16: false\nlogging_steps: 1\n"
    )
    work = tmp_path / "folds"
    result = audit(
        AuditConfig(
            file=str(path),
            output=str(tmp_path / "a.jsonl"),
            cross_fit=3,
            recipe=str(recipe),
            work_dir=str(work),
            min_agree=1,
        )
    )
    assert [f.scored_prompts_seen_in_training for f in result.folds] == [0, 0, 0]
    assert sum(f.scored_pairs for f in result.folds) == 24
    assert all(f.trained_pairs + f.scored_pairs == 24 for f in result.folds)
    # Checked again from the files each fold trained on: no scored prompt among them.
    key = lambda frame: set(frame.select(prompt_key()).to_series().to_list())
    every = pl.read_ndjson(path)
    for f in result.folds:
        trained = pl.read_ndjson(work / f"fold-{f.fold}.train.jsonl")
        assert (work / f"fold-{f.fold}" / "adapter_model.safetensors").exists()
        held = every.filter(~pl.col("id").is_in(trained["id"].implode()))
        assert held.height == f.scored_pairs and not key(held) & key(trained)
    (scorer,) = result.scorers
    assert scorer.name == "cross_fit" and scorer.no_vote == 0
    assert scorer.prefers_chosen + scorer.prefers_rejected + scorer.ties == 24
    assert [f.trained for f in result.folds] == ["new"] * 3

    # A rerun over the same folders (an audit stopped and started again) reuses every finished
    # fold model and scores the same; a changed recipe trains them again.
    def rerun(name: str):
        config = AuditConfig(
            file=str(path), output=str(tmp_path / name), cross_fit=3, recipe=str(recipe), work_dir=str(work)
        )
        return audit(config), pl.read_ndjson(tmp_path / name.replace(".jsonl", ".flagged.jsonl"))

    first = pl.read_ndjson(tmp_path / "a.flagged.jsonl")
    again, flagged = rerun("b.jsonl")
    assert [f.trained for f in again.folds] == ["reused"] * 3
    assert flagged.equals(first)
    recipe.write_text(recipe.read_text().replace("max_steps: 1", "max_steps: 2"))
    changed, _ = rerun("c.jsonl")
    assert [f.trained for f in changed.folds] == ["new"] * 3


def test_the_command_writes_and_reports(planted, tmp_path):
    path, flipped = planted
    out = tmp_path / "clean.jsonl"
    run = CliRunner().invoke(
        main, ["audit", str(path), "-o", str(out), "--scorer", "verify:sample_task", "--action", "drop", "--json"]
    )
    assert run.exit_code == 0, run.output
    report = json.loads(run.output)
    assert (report["pairs"], report["flagged"], report["written"], report["dropped"]) == (60, 12, 48, 12)
    again = CliRunner().invoke(main, ["audit", str(path), "-o", str(path), "--scorer", "verify:sample_task"])
    assert again.exit_code == 2 and "Traceback" not in again.output
    missing = CliRunner().invoke(main, ["audit", str(path), "-o", str(tmp_path / "x.jsonl")])
    assert missing.exit_code == 2 and "at least one --scorer" in missing.output


def test_a_judge_counts_only_verdicts_that_survive_the_swap(planted, tmp_path):
    path, flipped = planted
    judges = tmp_path / "judges.py"
    judges.write_text(
        "from prefkit.data.verifiers import sample_task\n"
        "def first(prompt, a, b):\n    return 'A'\n"
        "def right(prompt, a, b):\n    return 'A' if sample_task(prompt, a) else 'B'\n"
    )
    biased = audit(AuditConfig(file=str(path), output=str(tmp_path / "a.jsonl"), scorers=[f"judge:{judges}:first"]))
    (votes_,) = biased.scorers
    # Always the first position: every verdict flips with the order, so none counts and nothing is flagged.
    assert (votes_.inconsistent, votes_.no_vote, votes_.prefers_chosen, votes_.prefers_rejected) == (60, 60, 0, 0)
    assert biased.flagged == 0
    fair = audit(
        AuditConfig(
            file=str(path),
            output=str(tmp_path / "b.jsonl"),
            scorers=[f"j=judge:{judges}:right", "verify:sample_task"],
        )
    )
    assert set(fair.flagged_ids) == flipped
    assert {s.name: (s.prefers_chosen, s.prefers_rejected, s.inconsistent) for s in fair.scorers}["j"] == (48, 12, 0)


def test_a_judge_that_fails_on_some_pairs_leaves_them_without_a_vote(planted, tmp_path):
    """A user's judge raising on the pairs whose question holds a '+': those pairs get no vote
    (reason scorer_error, counted), the rest are judged, and the audit ends normally."""
    path, flipped = planted
    judges = tmp_path / "judges.py"
    judges.write_text(
        "from prefkit.data.verifiers import sample_task\n"
        "def picky(prompt, a, b):\n"
        "    if '+' in prompt:\n        raise RuntimeError('no sums')\n"
        "    return 'A' if sample_task(prompt, a) else 'B'\n"
    )
    pairs = [json.loads(line) for line in path.read_text().splitlines()]
    sums = sum("+" in p["prompt"][-1]["content"] for p in pairs)
    assert 0 < sums < 60
    result = audit(AuditConfig(file=str(path), output=str(tmp_path / "a.jsonl"), scorers=[f"judge:{judges}:picky"]))
    (votes_,) = result.scorers
    assert votes_.reasons == {"scorer_error": sums} and votes_.no_vote == sums
    assert votes_.prefers_chosen + votes_.prefers_rejected == 60 - sums
    flagged_sums = {p["id"] for p in pairs if "+" in p["prompt"][-1]["content"]} & set(result.flagged_ids)
    assert flagged_sums == set() and set(result.flagged_ids) == flipped - {
        p["id"] for p in pairs if "+" in p["prompt"][-1]["content"]
    }


def test_a_model_judge_reads_both_orders(tiny_model_dir, tmp_path):
    from prefkit.lm.scorers import ModelJudge, judge_votes

    judge = ModelJudge(str(tiny_model_dir))
    pairs = [{"prompt": msg("user", "2 + 2?"), "chosen": msg("assistant", "4"), "rejected": msg("assistant", "5")}]
    verdicts = (judge("2 + 2?", "4", "5"), judge("2 + 2?", "5", "4"))
    assert set(verdicts) <= {"A", "B"}
    expected = {("A", "B"): "chosen", ("B", "A"): "rejected"}.get(verdicts, "inconsistent")
    assert judge_votes(judge, pairs).votes.tolist() == [expected]


def test_a_judges_position_and_length_bias_are_measured(planted, tmp_path):
    """A judge that always picks the first reply flips with every swap (rate 1.0); one that picks the
    longer reply shows a longer-wins share of 1.0, and its agreement with the verifier is counted."""
    path, flipped = planted
    judges = tmp_path / "judges.py"
    judges.write_text(
        "def first(prompt, a, b):\n    return 'A'\n"
        "def longer(prompt, a, b):\n    return 'A' if len(a.split()) >= len(b.split()) else 'B'\n"
    )
    spec = [f"first=judge:{judges}:first", f"longer=judge:{judges}:longer", "verify:sample_task"]
    result = audit(AuditConfig(file=str(path), output=str(tmp_path / "a.jsonl"), scorers=spec, min_agree=3))
    by_name = {s.name: s for s in result.scorers}
    first = by_name["first"].bias
    assert (first.judged, first.position_flip_rate, first.decisive, first.longer_wins) == (60, 1.0, 0, None)
    longer = by_name["longer"].bias
    pairs = [json.loads(line) for line in path.read_text().splitlines()]
    words = [(len(p["chosen"][0]["content"].split()), len(p["rejected"][0]["content"].split())) for p in pairs]
    unequal = sum(c != r for c, r in words)
    assert longer.position_flip_rate == round(sum(c == r for c, r in words) / 60, 4)  # equal lengths: 'A' twice
    assert longer.decisive == unequal and longer.longer_wins == 1.0
    # Against the verifier: the judge agrees exactly where the right reply is the longer one.
    verify = {p["id"]: "rejected" if p["id"] in flipped else "chosen" for p in pairs}
    judge = {p["id"]: "chosen" if c > r else "rejected" for p, (c, r) in zip(pairs, words, strict=True) if c != r}
    expected = sum(verify[i] == v for i, v in judge.items()) / len(judge)
    assert longer.agreement["sample_task"] == round(expected, 4)
    assert by_name["sample_task"].bias is None
    report = json.loads((tmp_path / "a.report.json").read_text())
    assert {s["name"]: s["bias"] and s["bias"]["position_flip_rate"] for s in report["scorers"]} == {
        "sample_task": None,
        "first": 1.0,
        "longer": longer.position_flip_rate,
    }
    # The card of the audited file carries the judges' figures (read from the audit's report beside it).
    from prefkit.api import card

    text = Path(card(tmp_path / "a.jsonl", tmp_path / "card" / "README.md").card).read_text()
    assert f"| first | `first=judge:{judges}:first` | 100.0% of 60 | - of 0 | sample_task -, longer - |" in text
    assert f"| longer | `longer=judge:{judges}:longer` | " in text and f"{longer.longer_wins:.1%} of {unequal}" in text
