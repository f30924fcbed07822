"""prefmill/config.py: recipes are validated strictly and every error names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from prefmill.config import (
    GenerateConfig,
    RunConfig,
    apply_overrides,
    config_hash,
    load_config,
    validate_config,
)
from prefmill.errors import ConfigError

MINIMAL = "dataset: demo\nsource:\n  path: data/prompts.jsonl\n"


@pytest.fixture
def recipe_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "recipes"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "prompts.jsonl").write_text('{"question": "q", "answer": "1"}\n')
    return folder


def _write(folder: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


class TestLoadConfig:
    def test_minimal_recipe_gets_defaults(self, recipe_dir):
        cfg = load_config(_write(recipe_dir, MINIMAL))
        assert isinstance(cfg, RunConfig)
        assert cfg.dataset == "demo"
        assert (cfg.generate.n, cfg.generate.seed, cfg.engine.kind, cfg.pairs.rejected) == (4, 1234, "vllm", "most_confident")
        assert (cfg.source.split, cfg.source.offset, cfg.source.limit) == ("train", 0, None)

    def test_unknown_key_names_file_and_dotted_key(self, recipe_dir):
        path = _write(recipe_dir, MINIMAL + "generate:\n  nn: 3\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.message == f"{path}: invalid recipe\n  generate.nn: Extra inputs are not permitted (got 3)"
        assert info.value.hint == "see configs/demo.yaml for every key"

    def test_unknown_top_level_section(self, recipe_dir):
        path = _write(recipe_dir, MINIMAL + "bogus: 1\n")
        with pytest.raises(ConfigError, match=r"  bogus: Extra inputs are not permitted \(got 1\)"):
            load_config(path)

    def test_out_of_range_value_names_field_and_value(self, recipe_dir):
        path = _write(recipe_dir, MINIMAL + "generate:\n  n: 0\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.message == f"{path}: invalid recipe\n  generate.n: Input should be greater than or equal to 1 (got 0)"

    def test_every_bad_field_is_listed(self, recipe_dir):
        path = _write(recipe_dir, MINIMAL + "generate:\n  n: 0\n  top_p: 0\nengine:\n  p_error: 1.5\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        lines = info.value.message.splitlines()
        assert lines[0] == f"{path}: invalid recipe"
        assert sorted(line.split(":")[0].strip() for line in lines[1:]) == ["engine.p_error", "generate.n", "generate.top_p"]
        assert "  engine.p_error: Input should be less than or equal to 1 (got 1.5)" in lines

    def test_prompt_template_without_question(self, recipe_dir):
        path = _write(recipe_dir, MINIMAL + "generate:\n  prompt_template: 'Solve it.'\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert "generate.prompt_template: Value error, must contain '{question}', got 'Solve it.'" in info.value.message

    def test_missing_required_fields(self, recipe_dir):
        path = _write(recipe_dir, "source:\n  path: x\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.message == f"{path}: invalid recipe\n  dataset: Field required"

    def test_bad_dataset_name(self, recipe_dir):
        path = _write(recipe_dir, "dataset: 'my data'\nsource: {path: x}\n")
        with pytest.raises(ConfigError, match=r"  dataset: String should match pattern .* \(got 'my data'\)"):
            load_config(path)

    def test_relative_source_path_resolved_from_the_recipe_folder(self, recipe_dir, tmp_path, monkeypatch):
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        cfg = load_config(_write(recipe_dir, MINIMAL))
        assert cfg.source.path == str((recipe_dir / "data" / "prompts.jsonl").resolve())

    def test_path_not_beside_the_recipe_is_kept_as_given(self, recipe_dir):
        cfg = load_config(_write(recipe_dir, "dataset: d\nsource:\n  path: openai/gsm8k\n  subset: main\n"))
        assert (cfg.source.path, cfg.source.subset) == ("openai/gsm8k", "main")

    def test_absolute_source_path_unchanged(self, recipe_dir, tmp_path):
        target = tmp_path / "abs.jsonl"
        target.write_text("{}\n")
        cfg = load_config(_write(recipe_dir, f"dataset: d\nsource:\n  path: {target}\n"))
        assert cfg.source.path == str(target)

    def test_missing_file(self, tmp_path):
        path = tmp_path / "nope.yaml"
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.message == f"{path}: no such recipe file"

    def test_invalid_yaml(self, recipe_dir):
        path = _write(recipe_dir, "dataset: d\nsource: [unclosed\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.message.startswith(f"{path}: not valid YAML: ")

    @pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("", "NoneType"), ("42\n", "int")])
    def test_not_a_mapping(self, recipe_dir, text, kind):
        path = _write(recipe_dir, text)
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.message == f"{path}: expected a mapping of sections, got {kind}"

    def test_overrides_applied_before_validation(self, recipe_dir):
        cfg = load_config(_write(recipe_dir, MINIMAL), ["generate.n=8", "generate.stop=[a, b]", "pairs.reference_as_chosen=false"])
        assert (cfg.generate.n, cfg.generate.stop, cfg.pairs.reference_as_chosen) == (8, ("a", "b"), False)

    def test_bad_override_value_names_the_recipe_and_key(self, recipe_dir):
        path = _write(recipe_dir, MINIMAL)
        with pytest.raises(ConfigError) as info:
            load_config(path, ["generate.n=1000"])
        assert info.value.message == f"{path}: invalid recipe\n  generate.n: Input should be less than or equal to 256 (got 1000)"

    def test_unknown_override_key(self, recipe_dir):
        with pytest.raises(ConfigError, match=r"generate\.nn: Extra inputs are not permitted"):
            load_config(_write(recipe_dir, MINIMAL), ["generate.nn=3"])

    def test_frozen(self, recipe_dir):
        cfg = load_config(_write(recipe_dir, MINIMAL))
        with pytest.raises(ValidationError, match="frozen"):
            cfg.generate.n = 9  # type: ignore[misc]


class TestApplyOverrides:
    def test_values_parse_as_yaml_scalars(self):
        out = apply_overrides({"a": {"b": 1}}, ["a.b=true", "a.c=null", "x.y.z=1.5", "s=text", "l=[1, 2]"])
        assert out == {"a": {"b": True, "c": None}, "x": {"y": {"z": 1.5}}, "s": "text", "l": [1, 2]}

    def test_value_may_contain_equals(self):
        assert apply_overrides({}, ["generate.prompt_template=a={question}"]) == {"generate": {"prompt_template": "a={question}"}}

    def test_input_not_mutated(self):
        data = {"a": {"b": 1}}
        apply_overrides(data, ["a.b=2"])
        assert data == {"a": {"b": 1}}

    @pytest.mark.parametrize("item", ["generate.n", "=3", " =3"])
    def test_bad_syntax(self, item):
        with pytest.raises(ConfigError) as info:
            apply_overrides({}, [item])
        assert info.value.message == f"--set {item!r}: expected KEY=VALUE"
        assert info.value.hint == "e.g. --set generate.n=8"

    def test_cannot_descend_into_a_value(self):
        with pytest.raises(ConfigError) as info:
            apply_overrides({"dataset": "d"}, ["dataset.x=3"])
        assert info.value.message == "--set 'dataset.x=3': cannot set 'dataset.x': 'dataset' is not a section"


class TestValidateConfig:
    def test_origin_defaults_to_config(self):
        with pytest.raises(ConfigError) as info:
            validate_config({"source": {"path": "x"}})
        assert info.value.message == "config: invalid recipe\n  dataset: Field required"

    def test_round_trips_through_model_dump(self):
        cfg = validate_config({"dataset": "d", "source": {"path": "x"}, "generate": {"stop": ["###"]}})
        assert validate_config(cfg.model_dump(mode="json")) == cfg


class TestConfigHash:
    def test_stable_and_sensitive(self):
        assert config_hash(GenerateConfig()) == config_hash(GenerateConfig())
        assert config_hash(GenerateConfig(n=5)) != config_hash(GenerateConfig())
        assert len(config_hash(GenerateConfig())) == 16


@pytest.mark.parametrize("url", ["http://user:hunter2@127.0.0.1:8000/v1", "http://127.0.0.1/v1?api_key=hunter2",
                                 "https://h.example/v1?token=hunter2"])
def test_a_secret_in_engine_base_url_is_refused_without_echoing_it(url):
    for section in ({"engine": {"kind": "openai", "base_url": url}}, {"judge": {"engine": {"kind": "openai", "base_url": url}}}):
        with pytest.raises(ConfigError, match="must not hold credentials") as info:
            validate_config({"dataset": "x", "source": {"path": "p.jsonl"}} | section)
        assert "hunter2" not in str(info.value)
    assert validate_config({"dataset": "x", "source": {"path": "p.jsonl"},
                            "engine": {"kind": "openai", "base_url": "http://127.0.0.1:8000/v1?model=a"}})


class TestStrictScalars:
    """pydantic's lax mode would turn "6" and 4.0 into 6 and "yes" into True; a recipe is refused instead."""

    @pytest.mark.parametrize(("section", "value", "message"), [
        ({"generate": {"n": "6"}}, None, "generate.n: expected an integer, got text '6'"),
        ({"generate": {"n": 4.0}}, None, "generate.n: expected an integer, got 4.0"),
        ({"generate": {"seed": True}}, None, "generate.seed: expected an integer, got true"),
        ({"vote": {"enabled": "yes"}}, None, "vote.enabled: expected true or false, got text 'yes'"),
        ({"vote": {"enabled": 1}}, None, "vote.enabled: expected true or false, got 1"),
        ({"generate": {"temperature": "0.5"}}, None, "generate.temperature: expected a number, got text '0.5'"),
        ({"source": {"path": "x", "limit": "10"}}, None, "source.limit: expected an integer, got text '10'"),
        ({"engine": {"max_model_len": 2048.0}}, None, "engine.max_model_len: expected an integer, got 2048.0"),
        ({"rise": {"ratio": "1"}}, None, "rise.ratio: expected a number, got text '1'"),
        ({"pairs": {"curriculum": "no"}}, None, "pairs.curriculum: expected true or false, got text 'no'"),
        ({"filters": {"cream_judge": {"seed": "1"}}}, None, "filters.cream_judge.seed: expected an integer, got text '1'"),
        ({"process": {"rollouts": 8.5}}, None, "process.rollouts: expected an integer, got 8.5"),
    ])
    def test_refused_with_field_type_and_value(self, section, value, message):
        data = {"dataset": "d", "source": {"path": "x"}}
        data.update(section)
        with pytest.raises(ConfigError) as info:
            validate_config(data, origin="r.yaml")
        assert info.value.message == f"r.yaml: invalid recipe\n  {message}"

    def test_an_int_for_a_float_and_lists_for_tuples_are_fine(self):
        cfg = validate_config({"dataset": "d", "source": {"path": "x"}, "generate": {"temperature": 1, "stop": ["a"]},
                               "rise": {"error_types": ["change_number"], "ratio": None}})
        assert (cfg.generate.temperature, cfg.generate.stop, cfg.rise.error_types) == (1.0, ("a",), ("change_number",))

    def test_strict_and_other_errors_are_listed_together_once(self):
        with pytest.raises(ConfigError) as info:
            validate_config({"dataset": "d", "source": {"path": "x"}, "generate": {"n": "6", "top_p": 0, "nn": 1}})
        lines = info.value.message.splitlines()[1:]
        assert sorted(lines) == sorted([
            "  generate.n: expected an integer, got text '6'",
            "  generate.top_p: Input should be greater than 0 (got 0)",
            "  generate.nn: Extra inputs are not permitted (got 1)",
        ])

    def test_every_shipped_recipe_loads_and_round_trips(self):
        for path in sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")):
            cfg = load_config(path)
            assert validate_config(cfg.model_dump(mode="json")) == cfg, path


class TestHostileYaml:
    def test_duplicate_key(self, recipe_dir):
        path = _write(recipe_dir, MINIMAL + "generate:\n  n: 3\n  seed: 1\n  n: 5\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.message == f"{path}: duplicate key 'n' (lines 5 and 7)"

    def test_small_anchors_and_merge_keys_are_fine(self, recipe_dir):
        text = MINIMAL + "judge:\n  engine: &e {kind: scripted, seed: 3}\nrise:\n  engine:\n    <<: *e\n    seed: 4\n"
        cfg = load_config(_write(recipe_dir, text))
        assert (cfg.judge.engine.seed, cfg.rise.engine.seed, cfg.rise.engine.kind) == (3, 4, "scripted")

    def test_billion_laughs_is_refused_quickly_and_briefly(self, recipe_dir):
        lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        lines += [f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]
        path = _write(recipe_dir, MINIMAL + "x:\n" + "".join(f"  {line}\n" for line in lines))
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.message.startswith(f"{path}: aliases expand to more than 100000 values")
        assert len(str(info.value)) < 300

    def test_recursive_alias(self, recipe_dir):
        path = _write(recipe_dir, MINIMAL + "x: &x [*x]\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.message == f"{path}: line 4: recursive alias (a value that contains itself)"

    def test_too_big(self, recipe_dir):
        path = _write(recipe_dir, MINIMAL + "#" * 1_200_000 + "\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.message == f"{path}: 1.2 MB; a recipe may be at most 1 MB"

    def test_not_utf8(self, recipe_dir):
        path = recipe_dir / "r.yaml"
        path.write_bytes(MINIMAL.encode() + b"# \xff\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.message == f"{path}: line 4: not UTF-8 text (byte 0xff)"

    def test_a_folder(self, recipe_dir):
        with pytest.raises(ConfigError) as info:
            load_config(recipe_dir)
        assert info.value.message == f"{recipe_dir}: is a folder, not a recipe file"

    def test_huge_value_is_cut_in_the_message(self, recipe_dir):
        path = _write(recipe_dir, MINIMAL + f"generate:\n  n: '{'9' * 100_000}'\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert "more characters)" in info.value.message and len(info.value.message) < 600

    def test_override_value_not_yaml(self, recipe_dir):
        with pytest.raises(ConfigError) as info:
            load_config(_write(recipe_dir, MINIMAL), ["generate.stop=[a"])
        assert info.value.message.startswith("--set 'generate.stop=[a': the value is not valid YAML (")
