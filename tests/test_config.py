from dataclasses import dataclass, field

import pytest

from prefkit.config import from_mapping, load_yaml
from prefkit.errors import ConfigError
from tests.conftest import RECIPES


@dataclass
class Inner:
    rate: float = 0.5
    names: list[str] = field(default_factory=list)


@dataclass
class Outer:
    name: str
    count: int = 1
    flag: bool = False
    inner: Inner = field(default_factory=Inner)
    items: list[Inner] = field(default_factory=list)
    optional: int | None = None

    __renamed_keys__ = {"old_name": "use 'name' instead"}


def test_builds_nested_dataclasses_and_widens_ints_to_floats():
    out = from_mapping(
        Outer, {"name": "x", "inner": {"rate": 1, "names": ["a"]}, "items": [{"rate": 0.1}], "optional": None}
    )
    assert out == Outer(name="x", inner=Inner(rate=1.0, names=["a"]), items=[Inner(rate=0.1)])
    assert isinstance(out.inner.rate, float)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "cuont": 2}, "cuont: unknown key (did you mean 'count'?)"),
        ({"name": "x", "zzz": 2}, "zzz: unknown key (expected one of name, count"),
        ({"name": "x", "inner": {"rat": 1}}, "inner.rat: unknown key (did you mean 'rate'?)"),
        ({"name": "x", "items": [{}, {"rate": "fast"}]}, "items[1].rate: expected a number, got a string"),
        ({"name": "x", "count": True}, "count: expected a whole number, got true/false"),
        ({"name": "x", "flag": "yes"}, "flag: expected true or false, got a string"),
        ({"count": 2}, "name: required key is missing"),
        ({"name": "x", "old_name": "y"}, "old_name: removed key; use 'name' instead"),
    ],
)
def test_mistakes_name_the_key_path(data, message):
    with pytest.raises(ConfigError) as err:
        from_mapping(Outer, data)
    assert message in str(err.value)


def test_load_yaml_rejects_non_mappings_and_python_tags(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="a recipe is a mapping"):
        load_yaml(tmp_path / "list.yaml")
    (tmp_path / "evil.yaml").write_text("x: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(tmp_path / "evil.yaml")


def test_the_mix_recipe_resolves_to_its_sources_and_weights():
    from prefkit.data.mix import load_mix_recipe

    assert [p.name for p in RECIPES.glob("mix-*.yaml")] == ["mix-hh-ultrafeedback.yaml"]
    config = load_mix_recipe(RECIPES / "mix-hh-ultrafeedback.yaml")
    assert [(s.path, s.weight) for s in config.sources] == [
        ("hf:Anthropic/hh-rlhf:train", 0.5),
        ("hf:HuggingFaceH4/ultrafeedback_binarized:train_prefs", 0.5),
    ]
    assert config.dedupe.near and config.decontaminate.files == ["hf:HuggingFaceH4/ultrafeedback_binarized:test_prefs"]
