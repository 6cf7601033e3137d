"""The data commands' outputs, as digests: what the streaming rewrite of validate, card, dedupe and
mix (issue 30) must leave unchanged, byte for byte.

Run as a script it writes the digests of one run to a JSON file (``python tests/data/same_outputs.py
OUT.json``); ``tests/data/test_same_outputs.py`` runs the same commands and compares with
``tests/data/same_outputs.json``, which this script wrote at c3f00c3, the last in-memory version.
Every output file and every result is hashed, with timing fields (``seconds``), the run's own
folder and the place of ``../shared/data`` removed; the real-data cases read ``../shared/data`` and
are left out when it is absent.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import prefkit

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TIMING_KEYS = {"seconds"}


def _places(folder: Path) -> list[tuple[str, str]]:
    # Both the run's folder and ../shared/data stand for a token: CI clones elsewhere than /work, and the
    # reports and rejects of the real files name the file they read.
    return [(str(folder), "<run>"), (str(SHARED), "<shared>")]


def _scrub(value, places: list[tuple[str, str]]):
    if isinstance(value, dict):
        return {k: _scrub(v, places) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_scrub(v, places) for v in value]
    if isinstance(value, str):
        for place, token in places:
            value = value.replace(place, token)
        return value
    return value


def digest_folder(folder: Path, results: dict) -> dict[str, str]:
    """sha256 of every file under ``folder`` but the PNG histograms (JSON files with timing fields and the folder's path
    removed) and of each command's result, by name."""
    out, places = {}, _places(folder)
    # The histograms are left out: their bytes are matplotlib's, and change with its release.
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".png"):
        data = path.read_bytes()
        if path.suffix == ".json":
            data = json.dumps(_scrub(json.loads(data), places), sort_keys=True).encode()
        else:
            for place, token in places:
                data = data.replace(place.encode(), token.encode())
        out[str(path.relative_to(folder))] = hashlib.sha256(data).hexdigest()
    for name, result in results.items():
        text = json.dumps(_scrub(result, places), sort_keys=True, default=str)
        out[f"result:{name}"] = hashlib.sha256(text.encode()).hexdigest()
    return out


def sample_commands(folder: Path) -> dict:
    """Every data command on the bundled sample: validate (plain, dry run, gates), card, dedupe, and
    mixes with every dedupe step, decontamination, weights with repeats and Parquet."""
    raw = prefkit.sample(folder / "raw")
    train, heldout = folder / "train.jsonl", folder / "heldout.jsonl"
    results = {
        "convert-train": prefkit.convert(raw.train, train).to_dict(),
        "convert-heldout": prefkit.convert(
            raw.heldout, heldout, fields=["prompt=question", "chosen=answers.good", "rejected=answers.bad"]
        ).to_dict(),
    }
    results["validate"] = prefkit.validate(train, report=str(folder / "validate.json")).to_dict()
    results["validate-raw"] = prefkit.validate(raw.train, format="hh-rlhf").to_dict()
    results["validate-gates"] = prefkit.validate(
        [train], no_overlap=[str(heldout)], max_duplicate_share=0.0, fail_on="never"
    ).to_dict()
    results["card"] = prefkit.card(train, folder / "card" / "README.md").to_dict()
    results["dedupe"] = prefkit.dedupe(
        train, folder / "dedupe" / "out.jsonl", prompt=True, near=True, near_threshold=0.5
    ).to_dict()
    results["mix"] = prefkit.mix(
        [train], folder / "mix", test_size=0.2, near=True, decontaminate=[str(heldout)]
    ).to_dict()
    results["mix-weights"] = prefkit.mix(
        prefkit.MixConfig(
            sources=[
                prefkit.MixSource(path=str(train), weight=0.5, allow_repeat=True),
                prefkit.MixSource(path=str(heldout), weight=0.5, allow_repeat=True),
            ],
            total=600,
            parquet=True,
            dedupe=prefkit.DedupeConfig(prompt=True, prompt_k=2),
        ),
        folder / "mix-weights",
    ).to_dict()
    return results


def real_commands(folder: Path) -> dict:
    """The same commands on the real rows of ``../shared/data``: HH-RLHF and UltraFeedback (three layouts)."""
    hh, uf = folder / "hh.jsonl", folder / "uf.jsonl"
    uf_test, argilla = folder / "uf-test.jsonl", folder / "argilla.jsonl"
    results = {
        "convert-hh": prefkit.convert(SHARED / "hh-rlhf-harmless-base-test.jsonl.gz", hh).to_dict(),
        "convert-uf": prefkit.convert(SHARED / "ultrafeedback-binarized-train_prefs.parquet", uf).to_dict(),
        "convert-uf-test": prefkit.convert(SHARED / "ultrafeedback-binarized-test_prefs.parquet", uf_test).to_dict(),
        "convert-argilla": prefkit.convert(
            SHARED / "ultrafeedback-binarized-preferences-argilla.jsonl.gz", argilla
        ).to_dict(),
    }
    for name, path in (("hh", hh), ("uf", uf), ("argilla", argilla)):
        results[f"validate-{name}"] = prefkit.validate(path).to_dict()
        results[f"card-{name}"] = prefkit.card(path, folder / f"card-{name}" / "README.md").to_dict()
    results["validate-raw-hh"] = prefkit.validate(
        SHARED / "hh-rlhf-harmless-base-test.jsonl.gz", format="auto"
    ).to_dict()
    results["validate-gates"] = prefkit.validate(
        [uf, argilla], no_overlap=[str(uf_test)], max_duplicate_share=0.01, fail_on="never"
    ).to_dict()
    results["dedupe-hh"] = prefkit.dedupe(hh, folder / "dedupe" / "hh.jsonl", prompt=True, near=True).to_dict()
    results["mix"] = prefkit.mix(
        prefkit.MixConfig(
            sources=[
                prefkit.MixSource(path=str(hh), weight=0.6),
                prefkit.MixSource(path=str(argilla), weight=0.4, allow_repeat=True),
            ],
            total=2500,
            test_size=0.1,
            dedupe=prefkit.DedupeConfig(prompt=True, near=True, near_fields="pair"),
            decontaminate=prefkit.DecontaminateConfig(files=[str(uf_test)]),
        ),
        folder / "mix",
    ).to_dict()
    results["mix-plain"] = prefkit.mix([uf, hh], folder / "mix-plain", test_size=0.2, near=True).to_dict()
    return results


def run_all(folder: Path) -> dict[str, dict[str, str]]:
    """The digests of every case (``sample``, and ``real`` when ``../shared/data`` is there)."""
    out = {}
    cases = [("sample", sample_commands)] + ([("real", real_commands)] if SHARED.is_dir() else [])
    for name, commands in cases:
        case = folder / name
        case.mkdir(parents=True)
        out[name] = digest_folder(case, commands(case))
    return out


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        digests = run_all(Path(tmp))
    Path(sys.argv[1]).write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
