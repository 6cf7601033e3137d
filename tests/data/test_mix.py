import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from prefkit.cli import main
from prefkit.data.dedupe import DecontaminateConfig, DedupeConfig, dedupe_file
from prefkit.data.keys import prompt_key
from prefkit.data.mix import MixConfig, MixSource, load_mix_recipe, mix
from prefkit.data.sources import file_sha256
from prefkit.data.validate import validate_file
from prefkit.errors import ConfigError
from tests.conftest import hh, read_jsonl


def hh_file(write_jsonl, name, prompts, reply="fine"):
    return write_jsonl(
        name, [{"chosen": hh(p, f"{reply} {i}"), "rejected": hh(p, f"no {i}")} for i, p in enumerate(prompts)]
    )


def outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def check_manifest(out: Path) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    for s in manifest["sources"]:
        kept_unique = s["kept"] - s["repeated"]
        assert s["candidates"] == s["rejected"] + s["deduped"] + s["decontaminated"] + s["not_sampled"] + kept_unique, s
    assert sum(s["kept"] for s in manifest["sources"]) == manifest["splits"]["train"] + manifest["splits"]["test"]
    rows = manifest["lineage"]["rows"]
    assert len(rows) == manifest["splits"]["train"] + manifest["splits"]["test"]
    for split in ("train", "test"):
        ids = [r["id"] for r in read_jsonl(out / f"{split}.jsonl")]
        assert sorted(ids) == sorted(r[0] for r in rows if r[1] == split)
        assert validate_file(out / f"{split}.jsonl").ok
    return manifest


def test_concatenation_without_weights_keeps_all_and_splits_by_prompt(write_jsonl, tmp_path):
    a = hh_file(write_jsonl, "a.jsonl", [f"question {i % 40}" for i in range(100)])  # 40 prompts, repeated
    result = mix(MixConfig(sources=[MixSource(str(a))], seed=3), tmp_path / "out")
    assert result.train + result.test == 100 and result.test == 10
    manifest = check_manifest(tmp_path / "out")
    train = pl.read_ndjson(tmp_path / "out" / "train.jsonl").select(prompt_key()).to_series()
    test = pl.read_ndjson(tmp_path / "out" / "test.jsonl").select(prompt_key()).to_series()
    assert not set(train) & set(test)
    lineage = {r[0]: (r[2], r[3]) for r in manifest["lineage"]["rows"]}
    first = read_jsonl(tmp_path / "out" / "train.jsonl")[0]
    file, line = lineage[first["id"]]
    # Outputs name the source by its file name and sha256, nothing of this machine's folders.
    assert file == "a.jsonl" and manifest["inputs"] == [{"file": "a.jsonl", "sha256": file_sha256(a)}]
    for name in ("manifest.json", "README.md", "rejects.jsonl", "removed.jsonl"):
        assert str(tmp_path) not in (tmp_path / "out" / name).read_text(), name
    source_line = read_jsonl(tmp_path / file)[line - 1]
    assert first["chosen"][0]["content"] == source_line["chosen"].rsplit("Assistant: ", 1)[1]


def test_weights_are_exact_shares_and_repeats_are_counted(write_jsonl, tmp_path):
    big = hh_file(write_jsonl, "big.jsonl", [f"big {i}" for i in range(300)])
    small = hh_file(write_jsonl, "small.jsonl", [f"small {i}" for i in range(20)])
    config = MixConfig(sources=[MixSource(str(big), weight=0.75), MixSource(str(small), weight=0.25)], total=200)
    with pytest.raises(ConfigError, match=r"sources\[1\].weight: needs 50 pairs but .* has 20"):
        mix(config, tmp_path / "out")
    config.sources[1].allow_repeat = True
    result = mix(config, tmp_path / "out")
    assert [(c.kept, c.repeated, c.not_sampled) for c in result.sources] == [(150, 0, 150), (50, 30, 0)]
    ids = [r["id"] for split in ("train", "test") for r in read_jsonl(tmp_path / "out" / f"{split}.jsonl")]
    assert len(ids) == len(set(ids)) == 200 and sum(i.endswith(("-r1", "-r2")) for i in ids) == 30
    check_manifest(tmp_path / "out")


def test_same_seed_byte_identical_other_seed_same_counts(write_jsonl, tmp_path):
    a = hh_file(write_jsonl, "a.jsonl", [f"alpha {i}" for i in range(120)])
    b = hh_file(write_jsonl, "b.jsonl", [f"beta {i}" for i in range(80)])

    def run(seed, name):
        config = MixConfig(sources=[MixSource(str(a), weight=0.6), MixSource(str(b), weight=0.4)], total=100, seed=seed)
        mix(config, tmp_path / name)
        return tmp_path / name

    first, again, other = run(0, "first"), run(0, "again"), run(1, "other")
    assert outputs(first) == outputs(again)
    assert outputs(first)["train.jsonl"] != outputs(other)["train.jsonl"]
    counts = [json.loads((d / "manifest.json").read_text())["sources"] for d in (first, other)]
    assert counts[0] == counts[1]


def test_duplicates_across_sources_keep_the_earlier_source(write_jsonl, tmp_path):
    a = hh_file(write_jsonl, "a.jsonl", ["Shared question", "only in a"])
    b = write_jsonl(
        "b.jsonl",
        [
            {"prompt": "shared   QUESTION", "chosen": "fine 0", "rejected": "no 0"},
            {"prompt": "only in b", "chosen": "x", "rejected": "y"},
        ],
    )
    result = mix(MixConfig(sources=[MixSource(str(a)), MixSource(str(b))], test_size=0.0), tmp_path / "out")
    assert [(c.deduped, c.kept) for c in result.sources] == [(0, 2), (1, 1)]
    removed = read_jsonl(tmp_path / "out" / "removed.jsonl")
    assert [
        (r["method"], r["file"].endswith("b.jsonl"), r["duplicate_of_file"].endswith("a.jsonl")) for r in removed
    ] == [("exact", True, True)]


def test_recipe_file_and_its_mistakes(write_jsonl, tmp_path):
    a = hh_file(write_jsonl, "a.jsonl", [f"q {i}" for i in range(30)])
    recipe = tmp_path / "mix.yaml"
    recipe.write_text(
        f"sources:\n  - path: {a}\n    max_rows: 20\nseed: 4\ntest_size: 0.2\ndedupe:\n  near: true\ndecontaminate: [{a}]\n"
    )
    config = load_mix_recipe(recipe)
    assert (config.sources[0].max_rows, config.dedupe.near, config.decontaminate.files) == (20, True, [str(a)])
    cases = {
        "sources:\n  - path: x.jsonl\n    wieght: 1\n": "sources[0].wieght: unknown key (did you mean 'weight'?)",
        f"sources:\n  - path: {a}\n    weight: 0.5\n  - path: {a}\n    weight: 0.3\ntotal: 10\n": "sources: weights sum to 0.8, expected 1",
        f"sources:\n  - path: {a}\n    weight: 1\n": "total: expected a positive whole number when sources have weights",
        f"sources:\n  - path: {a}\n    weight: 1\n    fraction: 0.5\ntotal: 5\n": "sources[0]: give one of weight, fraction, max_rows",
        "sources: []\n": "sources: expected at least one source",
        f"sources:\n  - path: {a}\ndedupe:\n  near_threshold: 2\n": "dedupe.near_threshold: expected a number in (0, 1], got 2",
    }
    for text, message in cases.items():
        recipe.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_mix_recipe(recipe)
        assert message in str(err.value), text
    with pytest.raises(ConfigError, match=r"sources\[0\].path: .*no such file"):
        mix(MixConfig(sources=[MixSource(str(tmp_path / "missing.jsonl"))]), tmp_path / "out")


def test_source_that_yields_nothing_is_a_recipe_error(write_jsonl, tmp_path):
    bad = write_jsonl("bad.jsonl", [{"chosen": hh("q", "same"), "rejected": hh("q", "same")}])
    with pytest.raises(ConfigError, match=r"sources\[0\] .* yields no pairs \(read 1, rejected 1"):
        mix(MixConfig(sources=[MixSource(str(bad))]), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_quick_form_recipe_form_and_errors(write_jsonl, tmp_path):
    a = hh_file(write_jsonl, "a.jsonl", [f"q {i}" for i in range(50)])
    b = hh_file(write_jsonl, "b.jsonl", [f"r {i}" for i in range(50)])
    runner = CliRunner()
    result = runner.invoke(
        main, ["mix", str(a), str(b), "--weights", "0.7,0.3", "--total", "40", "--seed", "0", "-o", str(tmp_path / "q")]
    )
    assert result.exit_code == 0, result.output
    assert "train 36, test 4" in result.output
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"sources:\n  - path: {a}\n")
    assert runner.invoke(main, ["mix", str(recipe), "--total", "5", "-o", str(tmp_path / "r")]).exit_code == 2
    result = runner.invoke(main, ["mix", str(a), str(b), "--weights", "0.7", "-o", str(tmp_path / "x")])
    assert result.exit_code == 2 and "1 weights for 2 sources" in result.output
    recipe.write_text("sources:\n  - pth: a.jsonl\n")
    result = runner.invoke(main, ["mix", str(recipe), "-o", str(tmp_path / "y")])
    assert result.exit_code == 2 and "sources[0].pth: unknown key (did you mean 'path'?)" in result.output


def test_dedupe_command(write_jsonl, tmp_path):
    path = hh_file(
        write_jsonl, "a.jsonl", ["Hello there friend", "hello there friend", "something else entirely"], reply="same"
    )
    result = dedupe_file(str(path), tmp_path / "d.jsonl", DedupeConfig(exact=False, prompt=True))
    assert (result.read, result.written, result.removed) == (3, 2, {"prompt": 1})
    assert read_jsonl(tmp_path / "d.removed.jsonl")[0]["method"] == "prompt"


def test_real_mix_hh_with_both_ultrafeedback_layouts(shared_data, tmp_path):
    sources = [
        MixSource(str(shared_data / "hh-rlhf-harmless-base-test.jsonl.gz")),
        MixSource(str(shared_data / "ultrafeedback-binarized-train_prefs.parquet")),
        MixSource(str(shared_data / "ultrafeedback-binarized-preferences-argilla.jsonl.gz")),
    ]
    eval_file = shared_data / "ultrafeedback-binarized-test_prefs.parquet"
    config = MixConfig(sources=sources, decontaminate=DecontaminateConfig(files=[str(eval_file)]))
    result = mix(config, tmp_path / "out")
    hh_counts, h4, argilla = result.sources
    # argilla holds the train_prefs pairs (removed as exact duplicates of the earlier source) and
    # the test_prefs pairs (removed as contamination); H4 loses only its own tied/identical rows.
    assert (hh_counts.read, hh_counts.rejected, hh_counts.kept) == (2312, 13, 2299)
    assert (h4.read, h4.rejected, h4.deduped, h4.kept) == (1000, 116, 0, 884)
    assert (argilla.read, argilla.rejected, argilla.deduped, argilla.decontaminated, argilla.kept) == (
        1200,
        141,
        884,
        175,
        0,
    )
    manifest = check_manifest(tmp_path / "out")
    assert manifest["removed"] == {"exact": 884, "decontaminate-exact": 175}
    assert len(manifest["inputs"]) == 3 and all(len(i["sha256"]) == 64 for i in manifest["inputs"])
    assert "license:\n- mit" in (tmp_path / "out" / "README.md").read_text()
    train = pl.read_ndjson(tmp_path / "out" / "train.jsonl").select(prompt_key()).to_series()
    test = pl.read_ndjson(tmp_path / "out" / "test.jsonl").select(prompt_key()).to_series()
    assert len(test) > 0 and not set(train) & set(test)
    mix(config, tmp_path / "again")
    assert outputs(tmp_path / "out") == outputs(tmp_path / "again")


def test_cli_parquet_and_standard_style(write_jsonl, tmp_path):
    a = hh_file(write_jsonl, "a.jsonl", [f"q {i}" for i in range(30)])
    args = ["mix", str(a), "--parquet", "--style", "standard", "--test-size", "0.2", "-o", str(tmp_path / "p")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    train = pl.read_parquet(tmp_path / "p" / "train.parquet")
    assert train.height == 24 and train.schema["prompt"] == pl.String
    assert validate_file(tmp_path / "p" / "test.parquet").ok


def test_ranked_source_with_min_margin_and_the_card_margin_table(write_jsonl, tmp_path):
    nectar = write_jsonl(
        "nectar.jsonl",
        [
            {
                "prompt": f"\n\nHuman: question {i}\n\nAssistant:",
                "answers": [{"answer": f"q{i} rank {r}", "model": "m", "rank": r} for r in (1, 2, 3, 4)],
            }
            for i in range(20)
        ],
    )
    plain = hh_file(write_jsonl, "hh.jsonl", [f"other {i}" for i in range(10)])
    config = MixConfig(
        sources=[MixSource(str(nectar), binarize="all-pairs", min_margin=2), MixSource(str(plain))], seed=1
    )
    result = mix(config, tmp_path / "out")
    counts = {Path(c.source).name: c for c in result.sources}
    # 6 pairs per record, 3 of them with a rank gap of at least 2.
    assert (counts["nectar.jsonl"].read, counts["nectar.jsonl"].candidates) == (20, 120)
    assert counts["nectar.jsonl"].reasons == {"weak_preference": 60} and counts["nectar.jsonl"].kept == 60
    assert result.train + result.test == 70
    check_manifest(tmp_path / "out")
    train = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert {r["margin"] for r in train if r["source"].startswith("nectar")} <= {2.0, 3.0}
    assert all(r.get("margin") is None for r in train if r["source"].startswith("hh-rlhf"))
    rejects = read_jsonl(tmp_path / "out" / "rejects.jsonl")
    assert len(rejects) == 60 and {r["source"] for r in rejects} == {"nectar.jsonl"}
    card = (tmp_path / "out" / "README.md").read_text()
    assert "## Preference strength" in card and "| nectar:nectar.jsonl | " in card
