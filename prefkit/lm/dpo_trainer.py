"""prefkit's ``DPOTrainer``: TRL's, with content-keyed data caches and length-grouped batches.

TRL keeps both caches beside the dataset, keyed on the tokenized dataset's fingerprint, and that
fingerprint covers the whole ``DPOConfig`` (its truncation filter is a lambda that captures the
config). So another ``beta`` or ``loss_type`` tokenizes again and, worse, runs the reference model
over every pair again, although neither changes a single reference log-prob. Here the keys say what
the values depend on, and nothing else:

- tokenized pairs: the pairs, the tokenizer (every file it saves: vocabulary, merges, special
  tokens, chat template), ``max_length`` and ``truncation_mode`` (which pairs survive the filter),
  and the TRL version;
- reference log-probs: the tokenized pairs' key, the reference model's weights (LoRA adapters left
  out: the reference is the base with adapters disabled), and the precision (``bf16``/``fp16``)
  and ``ld_alpha``, which change the numbers.

A sweep over ``beta`` or ``loss_type`` that points every run at one ``cache_dir`` pays for the
reference pass once.

``train_sampling_strategy: group_by_length`` works on preference pairs too: transformers' sampler
looks for an ``input_ids`` column, which tokenized pairs do not have, so their lengths are given to
it directly.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from trl import DPOTrainer

from prefkit.lm.compat import dataset_fingerprint
from prefkit.progress import ReportProgress

REFERENCE_COLUMNS = ["ref_chosen_logps", "ref_rejected_logps"]
TOKENIZATION_VERSION = "prefkit-1"
"""Changes whenever prefkit's tokenization or audit changes what it keeps, so old caches are not reused."""


def digest(parts: dict) -> str:
    """A short stable hash of a JSON-able mapping.

    >>> digest({"a": 1, "b": [2, 3]}) == digest({"b": [2, 3], "a": 1})
    True
    """
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def tokenizer_digest(tokenizer) -> str:
    """sha256 over the files ``save_pretrained`` writes, so any change to the tokenizer shows."""
    sha = hashlib.sha256()
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        for path in sorted(p for p in Path(tmp).rglob("*") if p.is_file()):
            sha.update(path.name.encode() + b"\0" + path.read_bytes())
    return sha.hexdigest()


def weights_digest(model) -> str:
    """sha256 over a model's weights, in name order, LoRA adapter weights left out.

    With LoRA the reference is the base model with adapters disabled, so the adapters' rank or
    initialization must not change the key.
    """
    import torch

    sha = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if "lora_" in name:
            continue
        tensor = tensor.detach().cpu()
        sha.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        if tensor.dtype not in (torch.float32, torch.float16, torch.int64, torch.int32, torch.bool, torch.uint8):
            tensor = tensor.float()  # numpy has no bfloat16 or float8
        sha.update(tensor.contiguous().numpy().tobytes())
    return sha.hexdigest()


def tokens_key(data_fingerprint: str, tokenizer_hash: str, args, long_prompts: str = "drop") -> str:
    """What the tokenized pairs depend on."""
    import trl

    return digest(
        {
            "data": data_fingerprint,
            "tokenizer": tokenizer_hash,
            "max_length": args.max_length,
            "truncation_mode": args.truncation_mode,
            "long_prompts": long_prompts,
            "tokenization": TOKENIZATION_VERSION,
            "trl": trl.__version__,
        }
    )


def reference_key(tokens: str, reference_hash: str, args) -> str:
    """What the reference log-probs depend on: not ``beta``, not ``loss_type``, not the LoRA settings."""
    return digest(
        {"tokens": tokens, "reference": reference_hash, "bf16": args.bf16, "fp16": args.fp16, "ld_alpha": args.ld_alpha}
    )


def saved_dataset(folder: Path, build: Callable[[], object]):
    """Loads the dataset saved in ``folder``, or builds, saves (atomically) and loads it.

    Processes racing to save the same folder each write their own temporary copy; the first rename
    wins and the others keep what it wrote (same key, same content).
    """
    import datasets

    if not (folder / "state.json").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            build().save_to_disk(str(tmp))
            try:
                tmp.replace(folder)
            except OSError:
                if not (folder / "state.json").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return datasets.load_from_disk(str(folder))


def pair_lengths(dataset) -> list[int]:
    """Tokens of a tokenized pair's longer sequence, what its padded batch is as wide as.

    >>> from datasets import Dataset
    >>> pair_lengths(Dataset.from_dict({"prompt_ids": [[1, 2]], "chosen_ids": [[3]], "rejected_ids": [[4, 5, 6]]}))
    [5]
    """
    import pyarrow.compute as pc

    table = dataset.with_format("arrow")[:]
    replies = pc.max_element_wise(
        pc.list_value_length(table["chosen_ids"]), pc.list_value_length(table["rejected_ids"])
    )
    return pc.add(pc.list_value_length(table["prompt_ids"]), replies).to_pylist()


def scores_reference_itself(trainer) -> bool:
    """Whether prefkit's scorer gives what TRL's reference pass would: one process, the model in
    memory, TRL's default truncation, plain sums of log-probs."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    return (
        trainer.accelerator.num_processes == 1
        and trainer.ref_model is None
        and not (trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled)
        and trainer.args.truncation_mode == "keep_start"
        and trainer.ld_alpha is None
        and "ref" not in (getattr(model, "peft_config", None) or {})
    )


def tokenize_and_audit(dataset, tokenizer, args, long_prompts: str):
    """A pairs dataset (``prompt``/``chosen``/``rejected``, and ``id``/``__line``/``__file`` when
    known) as the tokenized pairs training keeps, and the audit (summary and error records)."""
    import datasets

    from prefkit.lm.token_audit import audit_columns

    result = audit_columns(tokenizer, dataset.to_dict(), args.max_length, args.truncation_mode, long_prompts)
    kept = {name: [ids[i] for i in result.kept] for name, ids in result.tokens.as_columns().items()}
    features = datasets.Features({name: datasets.List(datasets.Value("int64")) for name in kept})
    return (
        datasets.Dataset.from_dict(kept, features=features),
        result.to_dict() | {"error_records": [r.to_dict() for r in result.error_records]},
    )


def main_process_sees(folder: Path) -> bool:
    """Whether the main process finds a saved dataset in ``folder``; every process gets its answer."""
    from accelerate.utils import broadcast_object_list

    found = [(folder / "state.json").exists()]
    broadcast_object_list(found, from_process=0)
    return found[0]


def on_main(work: Callable[[], object]) -> None:
    """The main process does ``work`` (the writing); the others wait for it."""
    from accelerate import PartialState

    state = PartialState()
    if state.is_main_process:
        work()
    state.wait_for_everyone()


def tokens_key_of(dataset, cache_dir: Path) -> str | None:
    """The key of the tokens folder a prepared dataset was loaded from (None if it was not)."""
    folders = {Path(f["filename"]).parent for f in dataset.cache_files}
    if len(folders) != 1:
        return None
    folder = folders.pop()
    if folder.parent != cache_dir or not folder.name.startswith("tokens-"):
        return None
    return folder.name.removeprefix("tokens-")


class PrefkitDPOTrainer(DPOTrainer):
    """``trl.DPOTrainer`` with its two data caches kept in ``cache_dir`` under the keys above.

    It overrides TRL's two dataset hooks, ``_prepare_dataset`` (tokenize and filter) and
    ``_precompute_ref_logps``. A tokens miss runs TRL's own tokenization. A reference miss runs
    prefkit's shared-prompt scorer where that computes what TRL's pass computes (tested equal to
    1e-4), else TRL's own pass. Under several processes the main one decides hit or miss for all
    (TRL's hooks synchronize the processes, so every process must take the same branch) and is the
    one that writes. ``reference_hash`` None turns the reference cache off.
    """

    def __init__(
        self,
        *args,
        cache_dir: Path,
        tokenizer_hash: str,
        reference_hash: str | None = None,
        long_prompts: str = "drop",
        on_token_errors: str = "warn",
        progress: ReportProgress | None = None,
        **kwargs,
    ):
        # Set before TRL's __init__, which prepares the datasets through the hooks below.
        self.progress = progress
        """Told ``(stage, done, total)`` during the reference pass; the library itself prints nothing."""
        self.cache_dir = Path(cache_dir).resolve()
        self.tokenizer_hash = tokenizer_hash
        self.reference_hash = reference_hash
        self.long_prompts = long_prompts
        self.on_token_errors = on_token_errors
        self.token_audits: dict[str, dict] = {}
        """Per dataset name (train, eval): the token audit summary and its error records."""
        super().__init__(*args, **kwargs)
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        # transformers prints every logging step as a dict (or a tqdm bar); a caller that wants to
        # show progress passes a callback of its own.
        self.remove_callback(PrinterCallback)
        self.remove_callback(ProgressCallback)

    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        columns = getattr(dataset, "column_names", None) or []
        if self.args.train_sampling_strategy == "group_by_length" and self.args.length_column_name not in columns:
            from transformers.trainer_pt_utils import LengthGroupedSampler

            batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return LengthGroupedSampler(batch, lengths=pair_lengths(dataset))
        return super()._get_train_sampler(train_dataset)

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        """Tokenizes with prefkit's tokenization (what ``prefkit lint`` audits), leaves out the pairs
        with no learning signal, and keeps the audit beside the tokens and in ``token_audits``."""
        import datasets

        from prefkit.errors import DataError
        from prefkit.results import TokenReject

        key = tokens_key(dataset_fingerprint(dataset), self.tokenizer_hash, args, self.long_prompts)
        folder = self.cache_dir / f"tokens-{key}"
        audit_file = self.cache_dir / f"tokens-{key}.audit.json"
        if not main_process_sees(folder):

            def prepare() -> None:
                from prefkit.atomic_files import write_json

                prepared, audit = tokenize_and_audit(dataset, processing_class, args, self.long_prompts)
                write_json(audit, audit_file)  # before the folder: a folder on disk has its audit
                if len(prepared):  # datasets cannot load a saved dataset of no rows; the audit says why
                    saved_dataset(folder, lambda: prepared)

            on_main(prepare)
        audit = json.loads(audit_file.read_text(encoding="utf-8"))
        audit["error_records"] = [TokenReject(**r) for r in audit["error_records"]]
        self.token_audits[dataset_name] = audit
        if audit["pairs"] == audit["dropped"]:
            raise DataError(
                f"{dataset_name}: none of the {audit['pairs']} pairs is left to train on "
                f"({', '.join(f'{k} {v}' for k, v in audit['reasons'].items())}); raise max_length or set "
                "long_prompts: trim_turns",
                audit,
            )
        if self.on_token_errors == "fail" and audit["errors"]:
            raise DataError(
                f"{dataset_name}: {audit['errors']} of {audit['pairs']} pairs have token errors "
                f"({', '.join(f'{k} {v}' for k, v in audit['reasons'].items())}); on_token_errors is fail",
                audit,
            )
        return datasets.load_from_disk(str(folder))

    def _precompute_ref_logps(self, dataset, name, batch_size):
        import datasets

        tokens = tokens_key_of(dataset, self.cache_dir)
        if tokens is None or self.reference_hash is None:
            return super()._precompute_ref_logps(dataset, name, batch_size)
        folder = self.cache_dir / f"reference-{reference_key(tokens, self.reference_hash, self.args)}"
        if not main_process_sees(folder):
            if scores_reference_itself(self):
                scored = self._score_reference(dataset, name, batch_size)
                on_main(lambda: saved_dataset(folder, lambda: datasets.Dataset.from_dict(scored)))
            else:
                with_reference = super()._precompute_ref_logps(dataset, name, batch_size)
                on_main(lambda: saved_dataset(folder, lambda: with_reference.select_columns(REFERENCE_COLUMNS)))
        return datasets.concatenate_datasets([dataset, datasets.load_from_disk(str(folder))], axis=1)

    def _score_reference(self, dataset, name: str, batch_size: int) -> dict[str, list[float]]:
        """Reference log-probs with each prompt run once per pair instead of once per reply.

        TRL runs prompt + chosen and prompt + rejected as two full sequences; here the shared
        prefix and each prompt are computed once and their key/value cache reused
        (:func:`prefkit.lm.logprobs.reply_logps`), which on short replies is most of the work.
        """
        import contextlib

        import torch
        from peft import PeftModel

        from prefkit.lm.logprobs import reply_logps

        model = self.accelerator.unwrap_model(self.model)
        columns = dataset.select_columns(["prompt_ids", "chosen_ids", "rejected_ids"]).with_format("arrow")[:]
        tokenized = list(zip(*(columns[c].to_pylist() for c in columns.column_names), strict=True))
        adapters_off = model.disable_adapter() if isinstance(model, PeftModel) else contextlib.nullcontext()
        was_training = model.training
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if self.progress is not None:
                self.progress(f"reference log-probs ({name})", done, len(tokenized))

        with adapters_off, self.accelerator.autocast(), torch.no_grad():
            logps = reply_logps(model, tokenized, batch_size, self.args.max_length or sys.maxsize, on_batch=advance)
        model.train(was_training)
        return {"ref_chosen_logps": logps.chosen.tolist(), "ref_rejected_logps": logps.rejected.tolist()}
