"""mix --ray: the partitions read and the near-duplicate batches signed in Ray tasks on a local
instance, with the single-process run's output, byte for byte."""

import json
import random

import pytest

import prefkit
from prefkit.data.dedupe import DedupeConfig
from prefkit.data.mix import MixConfig, MixSource
from prefkit.data.ray_pool import RayPool


def _shard(path, rows, broken=()):
    lines = ["{oops" if i in broken else json.dumps(r) for i, r in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")


def _pair(prompt: str, chosen: str) -> dict:
    return {"prompt": prompt, "chosen": chosen, "rejected": "no idea, sorry"}


VOCABULARY = [f"w{i}" for i in range(2000)]


def _prompt(i: int) -> str:
    """Prompt ``i``: eight words of its own, sharing no word pair with another prompt's."""
    return " ".join(random.Random(i).sample(VOCABULARY, 8))


@pytest.fixture
def sources(tmp_path):
    """A folder of three shards (prompts repeating across them, one broken line) and a second source
    whose prompts are near copies of some of the shards'."""
    shards = tmp_path / "shards"
    shards.mkdir()
    for s in range(3):
        rows = [_pair(_prompt((s * 60 + i) % 150), f"fact {s}-{i}") for i in range(60)]
        _shard(shards / f"part-{s}.jsonl", rows, broken={7} if s == 1 else ())
    near = [_pair(f"please {_prompt(i)}", f"other {i}") for i in range(0, 150, 3)]
    _shard(tmp_path / "other.jsonl", near)
    return shards, tmp_path / "other.jsonl"


@pytest.mark.slow  # a Ray instance: the fast tier stays under 5 minutes
def test_mix_on_ray_writes_what_one_process_writes(sources, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    shards, other = sources
    config = MixConfig(
        sources=[MixSource(path=str(shards)), MixSource(path=str(other))],
        test_size=0.2,
        dedupe=DedupeConfig(prompt=True, near=True, near_threshold=0.6),
    )
    alone = prefkit.mix(config, tmp_path / "alone")
    read_by_ray = []
    real_read = RayPool.read
    monkeypatch.setattr(
        RayPool, "read", lambda self, jobs, progress=None: read_by_ray.append(jobs) or real_read(self, jobs)
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        spread = prefkit.mix(config, tmp_path / "ray", ray="local")
    finally:
        ray.shutdown()
    assert [len(job.files) for job in read_by_ray[0]] == [3, 1]  # four partitions, four tasks
    names = sorted(p.name for p in (tmp_path / "alone").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "ray").iterdir())
    for name in names:
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "alone" / name).read_bytes(), name
    assert spread.to_dict() | {"out_dir": None, "files": None} == alone.to_dict() | {"out_dir": None, "files": None}
    shard_counts, other_counts = spread.sources
    # 180 lines, one broken; the third shard asks 30 of the first's prompts again (prompt dedupe);
    # every prompt of the second source is a near copy of a shard's ("please" added: Jaccard 7/8).
    assert (shard_counts.read, shard_counts.rejected, shard_counts.written) == (180, 1, 179)
    assert shard_counts.deduped == 30 and other_counts.deduped == other_counts.written == 50
    assert spread.train + spread.test == 149
