"""``prefkit train``: thin stages on TRL with PEFT LoRA, driven by a recipe.

``method: dpo`` (the default) trains a policy on TRL's ``DPOTrainer``; ``method: reward`` trains a
reward model on TRL's ``RewardTrainer`` (a one-score sequence-classification head, trained whole,
with LoRA on the body; a source's ``margin`` enters the loss where it has one); ``method: kto``
trains a policy on TRL's ``KTOTrainer``, each pair unpaired into a desirable and an undesirable
reply (:func:`prefkit.data.unpaired.unpair`).

A recipe is plain YAML: prefkit's own keys (``model``, ``data``, ``lora``, ``output_dir``, ``seed``,
``trust_remote_code``, ``method``) and, beside them, any field of the method's TRL config
(``trl.DPOConfig``: ``beta``, ``loss_type``, ...; ``trl.RewardConfig``: ``center_rewards_coefficient``,
...; both: ``learning_rate``, ``max_length``, ``lr_scheduler_type``, ...). Keys TRL has removed fail
with their replacement; unknown keys fail with the nearest valid one. With LoRA (on by default) the
DPO reference model is the base with adapters disabled, so no second copy of the model is held.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from prefkit.config import DEFAULT_SEED, check_fields, from_mapping, load_yaml, option
from prefkit.errors import ConfigError, DataError, UsageError
from prefkit.lm.compat import cpu_has_native_bf16
from prefkit.lm.loading import DEFAULT_MODEL, adapter_digest, load_causal_lm, load_tokenizer, resolve_model
from prefkit.lm.token_audit import LONG_PROMPTS, reason_counts
from prefkit.progress import ReportProgress
from prefkit.results import Result, plain

# What TRL 1.x and transformers 5 removed or renamed, and what to use instead.
REMOVED_KEYS = {
    "max_prompt_length": "removed in TRL 1.x: prompts are not truncated on their own any more; use max_length (and truncation_mode)",
    "max_completion_length": "removed in TRL 1.x; use max_length (and truncation_mode)",
    "evaluation_strategy": "renamed to eval_strategy",
    "tokenizer": "TRL now calls it processing_class; prefkit loads it from the model, so drop the key",
    "ref_model": "with LoRA the reference is the base model with adapters disabled; without LoRA TRL copies the model",
}
# Where a Llama-style or GPT-2 model keeps its attention projections.
LORA_TARGETS = {
    "gpt2": ["c_attn", "c_proj"],
    "default": ["q_proj", "k_proj", "v_proj", "o_proj"],
}


@dataclass
class DataSettings:
    """Which canonical files to train and evaluate on."""

    train: str = option(help="Canonical training file, or a prefkit mix folder (its train and test splits).")
    eval: str | None = option(None, "Canonical evaluation file (optional).")
    eval_split: float | None = option(
        None,
        "Hold out this share of train for evaluation when no eval file is given.",
        min=0,
        min_open=True,
        max=1,
        max_open=True,
    )

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class LoraSettings:
    """LoRA adapters (on by default)."""

    enabled: bool = option(True, "Train LoRA adapters; false trains every weight.")
    r: int = option(16, "Adapter rank.", min=1)
    alpha: int = option(32, "Adapter scaling (lora_alpha).", min=1)
    dropout: float = option(0.05, "Dropout on adapter inputs.", min=0, max=1, max_open=True)
    target_modules: list[str] | None = option(
        None, "Modules to adapt; default by architecture: q/k/v/o_proj, or c_attn/c_proj for GPT-2."
    )
    last_layers: int | None = option(
        None,
        "Adapt only the last N transformer layers (default: all). The backward pass then stops at the "
        "lowest adapted layer, which is most of a step's cost on a CPU.",
        min=1,
    )

    def __post_init__(self) -> None:
        check_fields(self)


METHODS = {"dpo": "DPOConfig", "reward": "RewardConfig", "kto": "KTOConfig"}
"""Each ``method`` and the TRL config whose fields a recipe of it may set."""
REFERENCES = ("base", "adapter")
"""What a DPO run's reference is: the base with adapters disabled, or the adapter it started from."""


@dataclass
class TrainConfig:
    """A training recipe: prefkit's keys plus ``dpo``, the fields of the method's TRL config the recipe sets."""

    data: DataSettings = option(help="Training and evaluation data.")
    output_dir: str = option(help="Where the adapter, tokenizer, metrics and checkpoints go.")
    method: str = option(
        "dpo",
        "dpo: a policy on DPOTrainer; reward: a reward model (a score head) on RewardTrainer; "
        "kto: a policy on KTOTrainer, each pair as a desirable and an undesirable reply.",
        choices=tuple(METHODS),
    )
    model: str = option(DEFAULT_MODEL, "Bundled model name, local folder or hub id.")
    lora: LoraSettings = field(default_factory=LoraSettings, metadata={"help": "LoRA settings."})
    seed: int = option(DEFAULT_SEED, "Seed for training and the eval split.")
    trust_remote_code: bool = option(False, "Run model code from the hub (off unless set).")
    cache_dir: str | None = option(
        None,
        "Tokenized pairs and reference log-probs, kept under content keys (default: OUTPUT_DIR/cache). "
        "Runs that share it (a beta or loss_type sweep) run the reference model once.",
    )
    long_prompts: str = option(
        "drop",
        "drop: leave out pairs whose prompt fills max_length, as TRL does; trim_turns: remove the earliest whole "
        "turns of a prompt that does not fit (keeping a system message and the last user turn).",
        choices=LONG_PROMPTS,
    )
    on_token_errors: str = option(
        "warn",
        "warn: report token-level errors (prefkit lint's) and train; fail: exit 1 before any training step.",
        choices=("warn", "fail"),
    )
    adapter: str | None = option(
        None,
        "DPO: start from this trained LoRA adapter (a run folder of the same base model) and train it further, "
        "instead of from fresh adapters. prefkit loop sets it to continue the last round's policy.",
    )
    reference: str = option(
        "base",
        "DPO: the reference model. base: the base model with adapters disabled; adapter: the starting adapter as "
        "it was before this run (the previous policy), as TRL does when it is given a trained adapter.",
        choices=REFERENCES,
    )
    dpo: dict[str, Any] = option(
        {}, "Fields of the method's TRL config (DPOConfig: beta, ...; RewardConfig; both: learning_rate, ...)."
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.adapter is not None and (self.method != "dpo" or not self.lora.enabled):
            raise ConfigError("adapter: starting from a trained adapter is for method: dpo with LoRA")
        if self.reference == "adapter" and self.adapter is None:
            raise ConfigError("reference: adapter needs adapter: the trained adapter to start from")

    def training_arguments(self):
        """The recipe's TRL config (``DPOConfig``, or ``RewardConfig`` for ``method: reward``): prefkit's
        defaults, then the recipe's keys, checked by TRL itself.

        :func:`load_train_recipe` builds it once before any model loads, so a bad value fails at
        once; every stage that needs ``max_length`` or ``truncation_mode`` (lint, the trainer, the
        quickstart) reads it from here, never from a default of its own.
        """
        config_class = trainer_config_class(self.method)
        defaults = {
            "report_to": [],
            "logging_steps": 1,
            "save_strategy": "steps",
            "save_steps": 50,
            "save_total_limit": 2,
            "bf16": _bf16_supported(),
            # transformers runs bf16 on a CPU only when told the CPU is the device.
            "use_cpu": not _accelerator_available(),
        }
        if self.method == "dpo":
            # One reference pass before training, cached under a key of model, tokens and max_length:
            # later runs (another beta, another loss_type) reuse it.
            defaults["precompute_ref_log_probs"] = True
        if self.evaluates():
            defaults |= {"eval_strategy": "steps", "eval_steps": 50}
        try:
            return config_class(
                output_dir=self.output_dir, seed=self.seed, **checkpointing_renamed(config_class, defaults | self.dpo)
            )
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{config_class.__name__}: {err}") from err

    def evaluates(self) -> bool:
        """Whether the run has evaluation data: an eval file, an eval split, or a mix folder's test split."""
        return self.data.eval_split is not None or _data_files(self.data)[1] is not None


def checkpointing_renamed(config_class: type, keys: dict) -> dict:
    """``keys`` with ``gradient_checkpointing`` said as ``activation_checkpointing`` where the config has it.

    transformers 5.24 renamed the field; TRL's configs still default the old name to True, which
    warns in every run. Passing the new name (the recipe's value, else TRL's default) keeps the
    meaning, and a recipe written with either name works on either version.
    """
    fields = {f.name: f for f in dataclasses.fields(config_class) if f.init}
    if "activation_checkpointing" not in fields or "gradient_checkpointing" not in fields:
        return keys
    keys = dict(keys)
    old = keys.pop("gradient_checkpointing", fields["gradient_checkpointing"].default)
    keys.setdefault("activation_checkpointing", old)
    return keys


def trainer_config_class(method: str) -> type:
    """TRL's config class of a ``method``.

    >>> trainer_config_class("reward").__name__
    'RewardConfig'
    """
    import trl

    return getattr(trl, METHODS[method])


def dpo_fields(method: str = "dpo") -> dict[str, dataclasses.Field]:
    """The init fields of the method's TRL config (``DPOConfig`` by default)."""
    return {f.name: f for f in dataclasses.fields(trainer_config_class(method)) if f.init}


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``--set lora.r=8 --set beta=0.2``: dotted keys, values read as YAML (numbers, booleans, lists)."""
    data = json.loads(json.dumps(data))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item}: expected KEY=VALUE, e.g. --set beta=0.2")
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item}: '{part}' is not a mapping")
        node[leaf] = yaml.safe_load(raw)
    return data


def config_from_mapping(data: dict) -> TrainConfig:
    """Splits prefkit's keys from the method's TRL config's and checks every one (one line per mistake)."""
    own = {f.name for f in dataclasses.fields(TrainConfig)} - {"dpo"}
    method = data.get("method", "dpo")
    if method not in METHODS:
        raise ConfigError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    class_name = METHODS[method]
    trl_fields = dpo_fields(method)
    prefkit_part, dpo_part = {}, dict(data.pop("dpo", None) or {})
    for key, value in data.items():
        if key in REMOVED_KEYS:
            raise ConfigError(f"{key}: {REMOVED_KEYS[key]}")
        if key in own:
            prefkit_part[key] = value
        elif key in trl_fields:
            dpo_part[key] = value
        else:
            near = difflib.get_close_matches(key, sorted(own | set(trl_fields)), n=1, cutoff=0.6)
            hint = f"did you mean '{near[0]}'?" if near else f"not a prefkit or {class_name} key"
            raise ConfigError(f"{key}: unknown key ({hint})")
    for key in dpo_part:
        if key in REMOVED_KEYS:
            raise ConfigError(f"dpo.{key}: {REMOVED_KEYS[key]}")
        if key not in trl_fields:
            near = difflib.get_close_matches(key, sorted(trl_fields), n=1, cutoff=0.6)
            raise ConfigError(
                f"dpo.{key}: unknown {class_name} key" + (f" (did you mean '{near[0]}'?)" if near else "")
            )
    if "output_dir" in dpo_part:
        raise ConfigError("output_dir: set it at the top level of the recipe")
    config = from_mapping(TrainConfig, prefkit_part)
    config.dpo = numbers_as_numbers(dpo_part, trl_fields)
    return config


def numbers_as_numbers(dpo: dict, fields: dict[str, dataclasses.Field]) -> dict:
    """DPOConfig values that must be numbers, as numbers: YAML reads ``1e-3`` (no dot) as text, and
    TRL would pass that text on to the optimizer, which fails deep inside torch.

    >>> from prefkit.lm.train import dpo_fields
    >>> numbers_as_numbers({"learning_rate": "1e-3", "beta": 0.5}, dpo_fields())
    {'learning_rate': 0.001, 'beta': 0.5}
    >>> numbers_as_numbers({"learning_rate": "fast"}, dpo_fields())
    Traceback (most recent call last):
    ...
    prefkit.errors.ConfigError: learning_rate: expected a number, got 'fast'
    """
    out = {}
    for key, value in dpo.items():
        kind = str(fields[key].type)
        if isinstance(value, str) and ("float" in kind or "int" in kind) and "str" not in kind:
            try:
                value = float(value) if "float" in kind else int(value)
            except ValueError as err:
                raise ConfigError(f"{key}: expected a number, got '{value}'") from err
        out[key] = value
    return out


def load_train_recipe(path: str | Path, overrides: list[str] = (), keys: dict | None = None) -> TrainConfig:
    """Reads a training recipe, applies ``--set KEY=VALUE`` overrides, and checks every key and value,
    the DPO ones by building TRL's ``DPOConfig``: all before any model loads.

    >>> from prefkit.lm.quickstart import packaged_recipe
    >>> recipe = load_train_recipe(packaged_recipe(), ["output_dir=runs/qs", "beta=0.2"])
    >>> recipe.model, recipe.dpo["beta"], recipe.training_arguments().max_length
    ('smollm2-135m-instruct', 0.2, 128)
    >>> load_train_recipe(packaged_recipe(), ["output_dir=runs/qs", "max_prompt_length=64"])
    Traceback (most recent call last):
    ...
    prefkit.errors.ConfigError: max_prompt_length: removed in TRL 1.x: prompts are not truncated on their own any more; use max_length (and truncation_mode)
    """
    data = _merged(load_yaml(path), keys or {})
    config = config_from_mapping(apply_overrides(data, list(overrides)))
    config.training_arguments()
    return config


def _merged(base: dict, keys: dict) -> dict:
    """``base`` with ``keys`` laid over it, mappings merged key by key.

    >>> _merged({"lora": {"r": 16, "alpha": 32}, "beta": 0.1}, {"lora": {"r": 8}, "beta": 0.2})
    {'lora': {'r': 8, 'alpha': 32}, 'beta': 0.2}
    """
    out = dict(base)
    for key, value in keys.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@dataclass
class TokenSummary:
    """What happened to the training pairs on the way into the trainer: ``read == trained + dropped``.

    ``trained`` is the number of rows the trainer received, counted on its dataset, not computed
    from the other two.
    """

    read: int
    trained: int
    dropped: int
    dropped_reasons: dict[str, int]
    truncated: int
    """Pairs that train with tokens cut by ``max_length``."""
    errors: int
    """Pairs with a token error of any kind (dropped, or trained as they are)."""
    reasons: dict[str, int]
    trimmed: int
    """Prompts shortened by ``long_prompts: trim_turns``."""
    unit: str = "pairs"
    """What the counts count: ``pairs``, or ``records`` for KTO on an unpaired file."""


@dataclass
class TrainResult(Result):
    output_dir: str
    steps: int
    metrics: dict[str, float]
    resumed_from: str | None
    tokens: TokenSummary


RUN_RECORD = "prefkit_run.json"


def write_run_record(
    out: Path, config: TrainConfig, fingerprint: str, resumed_from: str | None = None, finished: bool = False
) -> None:
    """What a run folder was trained from: the recipe as resolved, its fingerprint, the checkpoint
    it resumed from (None for a run from the start), and whether the run finished (written again,
    ``finished: true``, once the model and its metrics are saved)."""
    from prefkit.atomic_files import write_json

    record = {
        "fingerprint": fingerprint,
        "recipe": dataclasses.asdict(config),
        "resumed_from": resumed_from,
        "finished": finished,
    }
    write_json(record, out / RUN_RECORD)


def read_run_record(folder: str | Path) -> dict:
    """A run folder's record: ``fingerprint``, ``recipe`` and the ``beta`` it trained with; ``{}`` for a
    folder that ``prefkit train`` did not write (a hub model, a plain model folder)."""
    path = Path(folder) / RUN_RECORD
    if not path.is_file():
        return {}
    record = json.loads(path.read_text(encoding="utf-8"))
    beta = record.get("recipe", {}).get("dpo", {}).get("beta")
    return record | ({"beta": float(beta)} if beta is not None else {})


def _check_output_dir(out: Path, data: list[str | None]) -> None:
    """A run writes its adapter, tokenizer, metrics and checkpoints into ``output_dir``: a folder
    that holds the run's own data would mix the two (and a file of the same name would be replaced).

    >>> _check_output_dir(Path("runs/a"), ["data/train.jsonl", None])
    >>> _check_output_dir(Path("data"), ["data/train.jsonl"])
    Traceback (most recent call last):
    ...
    prefkit.errors.UsageError: output_dir data holds the training data data/train.jsonl: choose another output_dir
    """
    folder = Path(os.path.realpath(out))
    for path in data:
        if path is not None and (
            folder == Path(os.path.realpath(path)) or folder in Path(os.path.realpath(path)).parents
        ):
            raise UsageError(f"output_dir {out} holds the training data {path}: choose another output_dir")


def _data_files(settings: DataSettings) -> tuple[str, str | None]:
    """A mix folder gives its train split and, unless an eval file is named, its test split."""
    train = Path(settings.train)
    if train.is_dir():
        found = {
            s: next((str(p) for p in (train / f"{s}.jsonl", train / f"{s}.parquet") if p.exists()), None)
            for s in ("train", "test")
        }
        if found["train"] is None:
            raise UsageError(f"data.train: {train} is a folder without train.jsonl or train.parquet")
        return found["train"], settings.eval or found["test"]
    return settings.train, settings.eval


def _load_pairs(path: str, sha256: str, cache: Path):
    """A canonical file as a disk-backed ``datasets.Dataset`` of prompt/chosen/rejected, or of
    prompt/completion/label for an unpaired file.

    The file is validated, then saved once under ``cache/pairs-<sha256 of the file>``, so its
    dataset fingerprint, which keys the tokenized-data cache, is the same on every run.
    """
    import datasets
    import polars as pl

    from prefkit.data.columns import FILE, LINE
    from prefkit.data.schema import detect_kind
    from prefkit.data.validate import load_canonical
    from prefkit.lm.dpo_trainer import saved_dataset

    def build():
        frame = load_canonical(path, lines=True, kind=None)
        if frame.height == 0:
            # An empty file (or only blank lines) has no columns to train on: the user's data, not a bug.
            raise DataError(f"{path}: no pairs to train on (the file holds no records)")
        unpaired = detect_kind(frame.schema) == "unpaired"
        text = ("prompt", "completion", "label") if unpaired else ("prompt", "chosen", "rejected")
        frame = frame.select(*text, "id", "source", LINE, pl.lit(Path(path).name).alias(FILE))
        return datasets.Dataset.from_list(frame.to_dicts())

    # "v2": the folder holds where each pair came from (id, source, file, line) for the token audit.
    return saved_dataset(cache / f"pairs-v2-{sha256[:16]}", build)


def data_hashes(config: TrainConfig) -> dict[str, str]:
    """The sha256 of each data file a recipe trains and evaluates on (a mix folder's splits
    resolved); each file is read once for it: it names the pairs folder and goes into the fingerprint."""
    from prefkit.data.sources import file_sha256

    return {f: file_sha256(Path(f)) for f in _data_files(config.data) if f}


def input_hashes(config: TrainConfig, data: dict[str, str]) -> list[str]:
    """What a run trains from besides its recipe: the data files' sha256, and the starting adapter's."""
    return list(data.values()) + ([adapter_digest(config.adapter)] if config.adapter else [])


def run_state(config: TrainConfig) -> str:
    """What ``config.output_dir`` holds of this very recipe on these very files: ``finished`` (its
    model and metrics saved), ``checkpointed`` (stopped after a checkpoint: ``resume="auto"``
    continues it) or ``none`` (nothing, or a run of another recipe or other data)."""
    from transformers.trainer_utils import get_last_checkpoint

    record = read_run_record(config.output_dir)
    if record.get("fingerprint") != fingerprint(config, input_hashes(config, data_hashes(config))):
        return "none"
    if record.get("finished"):
        return "finished"
    return "checkpointed" if get_last_checkpoint(config.output_dir) else "none"


def fingerprint(config: TrainConfig, file_hashes: list[str]) -> str:
    """What a checkpoint was trained from: the recipe as resolved and the data files' sha256.

    ``cache_dir`` is left out: where caches live changes no result.
    """
    recipe = dataclasses.asdict(config) | {"cache_dir": None}
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode())
    for sha256 in file_hashes:
        digest.update(sha256.encode())
    return digest.hexdigest()


def _lora_targets(model) -> list[str]:
    return LORA_TARGETS.get(model.config.model_type, LORA_TARGETS["default"])


def _accelerator_available() -> bool:
    import torch

    return torch.cuda.is_available() or torch.backends.mps.is_available()


def _bf16_supported() -> bool:
    """A GPU with bf16, or a CPU with native bf16 arithmetic (AVX512-BF16 or AMX): there, bf16
    autocast is about a quarter faster per step than float32. Elsewhere bf16 would be emulated."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


@dataclass
class PreparedData:
    train: Any  # datasets.Dataset
    eval: Any | None
    fingerprint: str
    checkpoint: str | None


def prepare_data(config: TrainConfig, cache: Path, resume: str | None) -> PreparedData:
    """Validates and loads the pairs, and finds the checkpoint to resume from (refusing a changed run)."""
    from transformers.trainer_utils import get_last_checkpoint

    out = Path(config.output_dir)
    train_file, eval_file = _data_files(config.data)
    hashes = data_hashes(config)
    train_set = _load_pairs(train_file, hashes[train_file], cache)
    eval_set = _load_pairs(eval_file, hashes[eval_file], cache) if eval_file else None
    for path, dataset in ((train_file, train_set), (eval_file, eval_set)):
        if dataset is not None and "completion" in dataset.column_names and config.method != "kto":
            raise UsageError(
                f"{path} holds unpaired records (prompt, completion, label): method {config.method} trains on "
                "pairs; method: kto trains on unpaired records"
            )
    if eval_set is None and config.data.eval_split:
        parts = train_set.train_test_split(test_size=config.data.eval_split, seed=config.seed)
        train_set, eval_set = parts["train"], parts["test"]
    run_id = fingerprint(config, input_hashes(config, hashes))
    checkpoint = None
    if resume is not None:
        checkpoint = get_last_checkpoint(str(out)) if resume == "auto" else resume
        if checkpoint is None or not Path(checkpoint).is_dir():
            raise UsageError(f"--resume {resume}: no checkpoint found in {out if resume == 'auto' else resume}")
        if read_run_record(out).get("fingerprint") != run_id:
            raise UsageError(
                f"--resume: the recipe or the data changed since {checkpoint} was written; start a new output_dir"
            )
    return PreparedData(train=train_set, eval=eval_set, fingerprint=run_id, checkpoint=checkpoint)


def lora_config(config: TrainConfig, model, task_type: str):
    """The recipe's ``peft.LoraConfig`` (None without LoRA); ``SEQ_CLS`` trains the score head whole
    beside the adapters (PEFT saves it with them)."""
    if not config.lora.enabled:
        return None
    from peft import LoraConfig

    layers = None
    if config.lora.last_layers is not None:
        total = model.config.num_hidden_layers
        layers = list(range(max(total - config.lora.last_layers, 0), total))
    return LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=config.lora.target_modules or _lora_targets(model),
        layers_to_transform=layers,
        task_type=task_type,
    )


def build_reward_trainer(config: TrainConfig, data: PreparedData, callbacks: list | None):
    """TRL's ``RewardTrainer`` on the pairs, tokenized by :func:`prefkit.lm.reward.reward_dataset` (the
    conversations ``score`` and ``audit`` read), with its ``token_audits`` as the DPO trainer keeps them."""
    from transformers import AutoModelForSequenceClassification, set_seed
    from trl import RewardTrainer

    from prefkit.lm.reward import reward_dataset

    set_seed(config.seed)
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    from prefkit.lm.loading import _loading

    with _loading(config.model):
        model = AutoModelForSequenceClassification.from_pretrained(
            resolve_model(config.model),
            num_labels=1,
            trust_remote_code=config.trust_remote_code,
            use_safetensors=True,
        )
    model.config.pad_token_id = tokenizer.pad_token_id
    return _with_prepared_data(RewardTrainer, config, data, model, tokenizer, reward_dataset, "SEQ_CLS", callbacks)


def _with_prepared_data(trainer_class, config, data, model, tokenizer, prepare, task_type, callbacks):
    """``trainer_class`` on the train and eval pairs as ``prepare(pairs, tokenizer, max_length)``
    gives them, with their token audits kept as ``token_audits`` (what the run's report reads)."""
    args = config.training_arguments()
    audits, sets = {}, {}
    for name, pairs in (("train", data.train), ("eval", data.eval)):
        if pairs is not None:
            sets[name], audits[name] = prepare(pairs, tokenizer, args.max_length)
            if audits[name]["pairs"] == audits[name]["dropped"]:
                raise DataError(f"{name}: none of the {audits[name]['pairs']} pairs fits max_length {args.max_length}")
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=sets["train"],
        eval_dataset=sets.get("eval"),
        processing_class=tokenizer,
        peft_config=lora_config(config, model, task_type),
        callbacks=callbacks,
    )
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    # As in PrefkitDPOTrainer: the library prints nothing; a caller shows progress with a callback.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.token_audits = audits
    return trainer


def kto_dataset(data, tokenizer, max_length: int | None):
    """``KTOTrainer``'s records (prompt, completion, label): an unpaired file's as they are, pairs
    unpaired; and the token audit: KTO keeps every record and cuts a long one to ``max_length``
    (its start kept), so a pair (or unpaired record) longer than that is counted as truncated, by
    name, never dropped."""
    import datasets
    import polars as pl

    from prefkit.data.unpaired import unpair
    from prefkit.lm.reward import conversation_ids

    if "completion" in data.column_names:
        records = pl.DataFrame({name: data[name] for name in ("id", "prompt", "completion", "label")})
        keys = records["id"]
    else:
        columns = ("id", "source", "prompt", "chosen", "rejected")
        records = unpair(pl.DataFrame({name: data[name] for name in columns}))
        keys = records["pair_id"]
    lengths = [
        len(conversation_ids(tokenizer, p, c))
        for p, c in zip(records["prompt"].to_list(), records["completion"].to_list(), strict=True)
    ]
    truncated = {key for key, n in zip(keys.to_list(), lengths, strict=True) if max_length and n > max_length}
    audit = {
        "pairs": len(data),
        "records": records.height,
        "dropped": 0,
        "errors": 0,
        "reasons": {},
        "truncated": {"pairs": len(truncated)},
        "long_prompts": {"trimmed": 0},
        "error_records": [],
    }
    return datasets.Dataset.from_list(records.select("prompt", "completion", "label").to_dicts()), audit


def build_kto_trainer(config: TrainConfig, data: PreparedData, callbacks: list | None):
    """TRL's ``KTOTrainer`` on the pairs, unpaired; LoRA as for DPO (the reference is the base with
    adapters disabled)."""
    from transformers import set_seed
    from trl import KTOTrainer

    set_seed(config.seed)
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_causal_lm(config.model, config.trust_remote_code)
    return _with_prepared_data(KTOTrainer, config, data, model, tokenizer, kto_dataset, "CAUSAL_LM", callbacks)


def build_trainer(
    config: TrainConfig,
    data: PreparedData,
    cache: Path,
    callbacks: list | None,
    progress: ReportProgress | None = None,
):
    """The model, tokenizer, LoRA and ``DPOConfig`` of a recipe, as a :class:`PrefkitDPOTrainer`."""
    from transformers import set_seed

    from prefkit.lm.dpo_trainer import PrefkitDPOTrainer, tokenizer_digest, weights_digest

    # Seeded before the LoRA weights are drawn, so a recipe trains the same way every run.
    set_seed(config.seed)
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    model = load_causal_lm(config.model, config.trust_remote_code)
    if isinstance(data.train[0]["prompt"], list) and not getattr(tokenizer, "chat_template", None):
        raise UsageError(f"model '{config.model}' has no chat template: convert the data with --style standard")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    args = config.training_arguments()
    # Hashed before LoRA wraps the model (in TRL's __init__): the reference is these weights.
    reference_hash = weights_digest(model) if args.precompute_ref_log_probs else None
    peft_config = lora_config(config, model, "CAUSAL_LM")
    if config.adapter:
        model, peft_config, reference_hash = starting_adapter(config, model, reference_hash)
    trainer = PrefkitDPOTrainer(
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.eval,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
        cache_dir=cache,
        tokenizer_hash=tokenizer_digest(tokenizer),
        reference_hash=reference_hash,
        long_prompts=config.long_prompts,
        on_token_errors=config.on_token_errors,
        progress=progress,
    )
    if config.adapter and config.reference == "base":
        load_adapter_weights(trainer.model, config.adapter)
    return trainer


def starting_adapter(config: TrainConfig, model, base_hash: str | None) -> tuple:
    """``(model, peft_config, reference hash)`` for a run that starts from ``config.adapter`` (the hash
    None, as ``base_hash`` is, when the reference log-probs are not cached).

    ``reference: adapter``: the model goes to TRL with the adapter loaded and trainable and no
    ``peft_config``; TRL then copies it as a frozen ``ref`` adapter, the reference. ``reference:
    base``: TRL gets the base and the adapter's own ``LoraConfig`` (fresh adapters, so disabling
    them gives the base, which the reference pass uses), and :func:`load_adapter_weights` puts the
    trained weights in after TRL's ``__init__`` has run the reference pass.
    """
    from peft import PeftConfig, PeftModel

    from prefkit.lm.dpo_trainer import digest

    saved = PeftConfig.from_pretrained(config.adapter)
    base = os.path.realpath(resolve_model(saved.base_model_name_or_path))
    if base != os.path.realpath(resolve_model(config.model)):
        raise UsageError(
            f"adapter {config.adapter} was trained on {saved.base_model_name_or_path}, not on model {config.model}"
        )
    if config.reference == "adapter":
        reference = base_hash and digest({"base": base_hash, "adapter": adapter_digest(config.adapter)})
        return PeftModel.from_pretrained(model, config.adapter, is_trainable=True), None, reference
    saved.inference_mode = False
    return model, saved, base_hash


def load_adapter_weights(model, folder: str) -> None:
    """A saved adapter's weights into the model's ``default`` adapter; every adapter weight must be found."""
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    result = set_peft_model_state_dict(model, load_peft_weights(folder))
    missing = [k for k in result.missing_keys if "lora_" in k]
    if missing:
        raise UsageError(f"adapter {folder}: {len(missing)} adapter weights not found, e.g. {missing[0]}")


def train(
    config: TrainConfig,
    resume: str | None = None,
    callbacks: list | None = None,
    progress: ReportProgress | None = None,
) -> TrainResult:
    """Runs DPO; ``resume`` is ``"auto"`` (the last checkpoint in the output folder) or a checkpoint path.

    ``callbacks`` are transformers ``TrainerCallback``s (how a caller shows the steps); ``progress``
    hears ``(stage, done, total)`` before the first step (the reference pass)."""
    out = Path(config.output_dir)
    _check_output_dir(out, [config.data.train, config.data.eval])
    cache = Path(config.cache_dir) if config.cache_dir else out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    data = prepare_data(config, cache, resume)
    if config.method == "reward":
        trainer = build_reward_trainer(config, data, callbacks)
    elif config.method == "kto":
        trainer = build_kto_trainer(config, data, callbacks)
    else:
        trainer = build_trainer(config, data, cache, callbacks, progress)
    # Under several processes (accelerate launch, torchrun) every one trains; the first writes.
    writes = trainer.is_world_process_zero()
    # KTO's dataset holds two records per pair (one per record of an unpaired file).
    unpaired = "completion" in data.train.column_names
    per_pair = 2 if config.method == "kto" and not unpaired else 1
    tokens = token_summary(trainer.token_audits, received=len(trainer.train_dataset) // per_pair)
    tokens.unit = "records" if unpaired else "pairs"
    if writes:
        out.mkdir(parents=True, exist_ok=True)
        write_run_record(out, config, data.fingerprint, data.checkpoint)
        write_token_report(out, trainer.token_audits, tokens)
    result = trainer.train(resume_from_checkpoint=data.checkpoint)
    trainer.save_model(str(out))  # TRL/transformers write from the main process only
    metrics = dict(result.metrics)
    if data.eval is not None:
        metrics |= trainer.evaluate()
    if writes:
        trainer.processing_class.save_pretrained(str(out))
        write_run_outputs(out, metrics, trainer.state.log_history)
        write_run_record(out, config, data.fingerprint, data.checkpoint, finished=True)
    return TrainResult(
        output_dir=str(out),
        steps=trainer.state.global_step,
        metrics=metrics,
        resumed_from=data.checkpoint,
        tokens=tokens,
    )


def token_summary(audits: dict[str, dict], received: int) -> TokenSummary:
    """The training pairs' audit (``token_audits["train"]``, as the trainer keeps it) and ``received``,
    the rows the trainer's dataset holds."""
    train = audits["train"]
    return TokenSummary(
        read=train["pairs"],
        trained=received,
        dropped=train["dropped"],
        dropped_reasons=reason_counts(r for r in train["error_records"] if r.dropped),
        truncated=train["truncated"]["pairs"],
        errors=train["errors"],
        reasons=train["reasons"],
        trimmed=train["long_prompts"]["trimmed"],
    )


def write_token_report(out: Path, audits: dict[str, dict], summary: TokenSummary) -> None:
    """``token_report.json`` (the audit of each dataset) and ``dropped.jsonl`` (each pair left out, and why)."""
    from prefkit.atomic_files import line_sink, write_json

    report = {name: {k: v for k, v in audit.items() if k != "error_records"} for name, audit in audits.items()}
    write_json(plain(summary) | {"datasets": report}, out / "token_report.json")
    with line_sink(out / "dropped.jsonl") as write:
        write(
            json.dumps({"dataset": name} | r.to_dict(), ensure_ascii=False)
            for name, audit in audits.items()
            for r in audit["error_records"]
            if r.dropped
        )


def write_run_outputs(out: Path, metrics: dict, history: list[dict]) -> None:
    """``metrics.json``, ``log_history.jsonl`` and ``loss.png`` (losses, reward accuracy and margins by step)."""
    from prefkit.atomic_files import line_sink, write_json

    write_json(metrics, out / "metrics.json")
    with line_sink(out / "log_history.jsonl") as write:
        write(json.dumps(entry) for entry in history)
    from prefkit.plotting import pyplot, save_figure

    # DPO logs its implicit rewards' accuracy and margin; a reward model logs its own scores'.
    logged = {key for h in history for key in h}
    accuracy, margin = ("accuracy", "margin") if "accuracy" in logged else ("rewards/accuracies", "rewards/margins")
    panels = [("loss", "eval_loss"), (accuracy, f"eval_{accuracy}"), (margin, f"eval_{margin}")]
    fig, axes = pyplot().subplots(1, 3, figsize=(13, 3.4), constrained_layout=True)
    for ax, (train_key, eval_key) in zip(axes, panels, strict=True):
        for key, label in ((train_key, "train"), (eval_key, "eval")):
            points = [(h["step"], h[key]) for h in history if key in h and "step" in h]
            if points:
                ax.plot(*zip(*points, strict=True), marker="." if label == "eval" else None, label=label)
        ax.set_title(train_key)
        ax.set_xlabel("step")
        if ax.lines:  # a run shorter than one logging step has nothing to label
            ax.legend()
    save_figure(fig, out / "loss.png")
