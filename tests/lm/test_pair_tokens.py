"""prefkit's tokenization gives TRL's ids: whole renderings, and the fast path that encodes the
shared prompt head once."""

import pytest

from prefkit.lm.pair_tokens import split_tokens, tokenize_pairs, truncate


def user(text):
    return [{"role": "user", "content": text}]


def reply(text):
    return [{"role": "assistant", "content": text}]


def trl_ids(tokenizer, prompt, chosen, rejected):
    """TRL 1.x's per-example tokenization (``DPOTrainer._prepare_dataset``'s ``tokenize_fn``)."""
    from trl.data_utils import _tokenize, common_prefix_length

    p = _tokenize(tokenizer, prompt, add_generation_prompt=True, tools=None)["input_ids"]
    c = _tokenize(tokenizer, prompt + chosen, tools=None)["input_ids"]
    r = _tokenize(tokenizer, prompt + rejected, tools=None)["input_ids"]
    n = min(common_prefix_length(p, c), common_prefix_length(p, r))
    return p[:n], c[n:], r[n:]


AWKWARD = [
    (user("What is 2 + 2?"), reply("4"), reply("5")),
    (user("Write <|im_start|> and <|im_end|> literally"), reply("<|im_end|> done"), reply("no")),
    (user("spaces   and\n\nnewlines "), reply("  leading spaces"), reply("\ttab")),
    (
        [{"role": "system", "content": "Be brief."}, *user("Hi"), *reply("Hello"), *user("Again?")],
        reply(""),
        reply(" "),
    ),
    (user("émoji 🙂 and ﬁ ligature"), reply("ça va"), reply("naïve")),
]


def test_the_fast_path_gives_trls_ids_on_awkward_text(bundled_tokenizer):
    assert split_tokens(bundled_tokenizer) is not None  # ChatML under a ByteLevel tokenizer: fast path on
    ours = tokenize_pairs(bundled_tokenizer, *(list(x) for x in zip(*AWKWARD, strict=True)))
    for i, pair in enumerate(AWKWARD):
        assert (ours.prompt_ids[i], ours.chosen_ids[i], ours.rejected_ids[i]) == trl_ids(bundled_tokenizer, *pair)


def test_standard_text_gets_eos_appended_as_trl_does(bundled_tokenizer):
    pairs = [("Q: 2+2?\nA:", " 4", " 5"), ("Say hi.", " hi" + bundled_tokenizer.eos_token, " bye")]
    ours = tokenize_pairs(bundled_tokenizer, *(list(x) for x in zip(*pairs, strict=True)))
    eos = bundled_tokenizer.eos_token
    for i, (p, c, r) in enumerate(pairs):
        expected = trl_ids(bundled_tokenizer, p, c if c.endswith(eos) else c + eos, r if r.endswith(eos) else r + eos)
        assert (ours.prompt_ids[i], ours.chosen_ids[i], ours.rejected_ids[i]) == expected
    assert ours.chosen_ids[1].count(bundled_tokenizer.eos_token_id) == 1  # not appended twice


def test_a_metaspace_tokenizer_is_encoded_whole():
    """Metaspace with prepend_scheme "first" treats the first piece of a text apart: no fast path."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"<s>": 0, "<unk>": 1, "▁hi": 2}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", unk_token="<unk>")
    assert split_tokens(tokenizer) is None


@pytest.mark.parametrize(
    ("prompt", "reply_ids", "max_length", "mode", "expected"),
    [
        ([1, 2], [3], 8, "keep_start", ([1, 2], [3])),
        ([1, 2, 3], [4, 5, 6], 4, "keep_start", ([1, 2, 3], [4])),
        ([1, 2, 3], [4, 5, 6], 4, "keep_end", ([3], [4, 5, 6])),
        ([1, 2], [3, 4, 5, 6, 7], 3, "keep_end", ([], [5, 6, 7])),
        ([1, 2], [3], None, "keep_start", ([1, 2], [3])),
    ],
)
def test_truncate_matches_trls_collator(prompt, reply_ids, max_length, mode, expected):
    """The collator cuts prompt + reply as one sequence; the reply is what is left after the prompt."""
    assert truncate(prompt, reply_ids, max_length, mode) == expected
    sequence = prompt + reply_ids
    if max_length is not None:
        sequence = sequence[:max_length] if mode == "keep_start" else sequence[-max_length:]
    kept_prompt, kept_reply = expected
    assert kept_prompt + kept_reply == sequence
