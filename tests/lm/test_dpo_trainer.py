"""prefkit's DPOTrainer pieces: the cache keys' inputs and length-grouped batches of pairs."""

import copy

import torch

from prefkit.lm.dpo_trainer import pair_lengths, tokenizer_digest, weights_digest
from prefkit.lm.train import DataSettings, TrainConfig, train


def test_tokenizer_digest_sees_a_changed_chat_template(bundled_tokenizer):
    other = copy.deepcopy(bundled_tokenizer)
    assert tokenizer_digest(other) == tokenizer_digest(bundled_tokenizer)
    other.chat_template = other.chat_template.replace("<|im_start|>", "<|im_start|> ")
    assert tokenizer_digest(other) != tokenizer_digest(bundled_tokenizer)


def test_weights_digest_ignores_lora_adapters_but_not_base_weights(tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    wrapped = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    before = weights_digest(wrapped)
    assert before == weights_digest(base)
    # LoRA layers rename the base weights (``base_layer``), so compare two adapters of different rank.
    small = get_peft_model(copy.deepcopy(base), LoraConfig(r=2, target_modules=["q_proj"]))
    large = get_peft_model(copy.deepcopy(base), LoraConfig(r=8, target_modules=["q_proj"]))
    assert weights_digest(small) == weights_digest(large)
    with torch.no_grad():
        base.model.layers[0].mlp.up_proj.weight[0, 0] += 1e-3
    assert weights_digest(base) != before


def test_pair_lengths_follow_the_longer_reply():
    from datasets import Dataset

    dataset = Dataset.from_dict(
        {
            "prompt_ids": [[1, 2], [1], [1, 2, 3]],
            "chosen_ids": [[3], [4, 5, 6, 7], [8]],
            "rejected_ids": [[4, 5, 6], [9], []],
        }
    )
    assert pair_lengths(dataset) == [5, 5, 4]
    assert pair_lengths(dataset.select([2, 0])) == [4, 5]


def test_group_by_length_batches_pairs_of_similar_length(tiny_model_dir, tmp_path):
    """transformers' own sampler would fail on tokenized pairs (it looks for input_ids)."""
    from transformers import AutoTokenizer, TrainerCallback
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from prefkit.lm.pair_tokens import tokenize_pair
    from tests.conftest import write_canonical

    pairs = [
        (
            [{"role": "user", "content": "Say it " + "again " * (i % 5)}],
            [{"role": "assistant", "content": "yes " * (1 + 3 * i)}],
            [{"role": "assistant", "content": "no"}],
        )
        for i in range(8)
    ]
    data = write_canonical(tmp_path / "train.jsonl", pairs)
    seen = []

    class Capture(TrainerCallback):
        def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
            seen.append(train_dataloader)

    config = TrainConfig(
        data=DataSettings(train=str(data)),
        output_dir=str(tmp_path / "run"),
        model=str(tiny_model_dir),
        dpo={
            "max_steps": 1,
            "per_device_train_batch_size": 4,
            "max_length": 128,
            "train_sampling_strategy": "group_by_length",
        },
    )
    assert train(config, callbacks=[Capture()]).steps == 1
    (loader,) = seen
    sampler = loader.batch_sampler.sampler
    assert isinstance(sampler, LengthGroupedSampler)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenized = [tokenize_pair(tokenizer, *pair) for pair in pairs]
    assert sampler.lengths == [len(p) + max(len(c), len(r)) for p, c, r in tokenized]


def test_prefkit_reference_pass_equals_trls(tiny_model_dir, tmp_path, monkeypatch):
    """The shared-prompt reference pass fills the cache with what TRL's own pass computes."""
    import datasets
    import numpy as np

    import prefkit.lm.dpo_trainer
    from tests.conftest import write_canonical

    pairs = [
        (
            [{"role": "user", "content": f"Question {i}: " + "why " * i}],
            [{"role": "assistant", "content": "Because. " * (i + 1)}],
            [{"role": "assistant", "content": "No idea"}],
        )
        for i in range(6)
    ]
    data = write_canonical(tmp_path / "train.jsonl", pairs)

    def reference_values(name):
        cache = tmp_path / name
        config = TrainConfig(
            data=DataSettings(train=str(data)),
            output_dir=str(tmp_path / f"run-{name}"),
            model=str(tiny_model_dir),
            cache_dir=str(cache),
            # float32: the comparison is of the two algorithms, not of bf16 rounding.
            dpo={"max_steps": 1, "per_device_train_batch_size": 4, "max_length": 48, "bf16": False},
        )
        train(config)
        (folder,) = cache.glob("reference-*")
        return datasets.load_from_disk(str(folder))

    ours = reference_values("prefkit")
    monkeypatch.setattr(prefkit.lm.dpo_trainer, "scores_reference_itself", lambda trainer: False)
    trls = reference_values("trl")
    for column in ("ref_chosen_logps", "ref_rejected_logps"):
        np.testing.assert_allclose(ours[column], trls[column], atol=1e-4)
        assert len(set(ours[column])) == len(pairs)  # distinct pairs, distinct values: rows not mixed up
