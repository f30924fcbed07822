"""Recipes: YAML files validated by pydantic, one model per stage, unknown keys refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from prefmill.engine_config import EngineConfig
from prefmill.errors import ConfigError, cut
from prefmill.preference_config import FiltersConfig, PairsConfig
from prefmill.recipe_yaml import RecipeProblem, parse_yaml, read_recipe_text
from prefmill.rise_config import RiseConfig
from prefmill.runner_config import RunnerConfig
from prefmill.strict import strict_errors


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    """Where prompts come from."""

    path: str
    """A JSONL or Parquet file, a folder of them, or a Hub dataset id (read through `datasets`)."""
    subset: str | None = None
    """Hub dataset configuration name, e.g. `main` for `openai/gsm8k`."""
    split: str = "train"
    """Split to read from a folder or Hub dataset; ignored for a single file."""
    question_field: str = "question"
    answer_field: str | None = "answer"
    """Reference: a worked solution ending `#### <answer>` (GSM8K) or a bare answer; null if none."""
    offset: int = Field(0, ge=0)
    limit: int | None = Field(None, ge=1)
    """Rows to read after `offset`; null reads all."""


class GenerateConfig(_Strict):
    n: int = Field(4, ge=1, le=256)
    """Samples per prompt (Self-Consistency uses 40; 4-16 is typical for pair building)."""
    temperature: float = Field(0.8, ge=0, le=2)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(256, ge=1)
    seed: int = 1234
    """Base seed; each prompt's seed derives from it and the prompt id, and is stored per sample."""
    stop: tuple[str, ...] = ()
    system_prompt: str | None = None
    prompt_template: str = "{question}\n\nSolve the problem step by step. End with a line '#### <answer>'."
    """User message; must contain `{question}`."""
    chunk_size: int = Field(64, ge=1)
    """Prompts per checkpointed engine call; a crashed run resumes after the last finished chunk."""
    max_failed_share: float = Field(0.0, ge=0, le=1)
    """Share of requests allowed to fail in the engine before the stage fails."""

    @field_validator("prompt_template")
    @classmethod
    def _has_question(cls, value: str) -> str:
        if "{question}" not in value:
            raise ValueError(f"must contain '{{question}}', got {value!r}")
        return value


class VerifyConfig(_Strict):
    timeout_seconds: int = Field(5, ge=1)
    """Per-answer limit for math-verify's parse and compare (main thread only)."""


class VoteConfig(_Strict):
    """Self-consistency (Wang et al. 2023): majority and logprob-weighted votes over the n samples."""

    enabled: bool = True
    easy_at: float = Field(0.75, ge=0, le=1)
    """Pass rate (or vote share without a reference) at or above which a prompt is `easy`."""
    hard_below: float = Field(0.25, ge=0, le=1)
    """Below this (and above 0) a prompt is `hard`; in between `medium`; 0 is `unsolved`."""


DEFAULT_RUBRIC = (
    "You are grading a solution to a math word problem.\n"
    "Check each step's arithmetic and reasoning, then the final answer.\n"
    "Score from 1 (wrong or nonsensical) to 10 (fully correct and clearly explained)."
)


class JudgeConfig(_Strict):
    """LLM-as-judge (self-critique when `engine` is null: the policy model judges its own samples)."""

    pointwise: bool = False
    """Rubric score 1-10 for every sample (with a rationale when `rationale`)."""
    pairwise: bool = False
    """Judge each pair in both orders (A/B then B/A); a verdict counts only when both orders agree."""
    samples: int = Field(1, ge=1, le=16)
    """Judge samples per item; SCIR agreement needs more than 1."""
    temperature: float = Field(0.7, ge=0, le=2)
    rationale: bool = False
    """Ask for a short rationale before the answer line (UltraFeedback's explain-then-score). Off: the
    judge answers with the line alone (`Score: 7`, `Verdict: A`, `First error: 2`), ~5 tokens instead
    of up to a few hundred; the rationale costs most of a judge stage's time on a small model."""
    max_tokens: int | None = Field(None, ge=4)
    """Judge tokens per sample; null: 12 for the answer line alone, 256 with a rationale."""
    seed: int = 4321
    rubric: str = DEFAULT_RUBRIC
    engine: EngineConfig | None = None
    """Another model as judge; null uses the policy engine."""
    constrained: bool = True
    """Guided decoding: the judge's output must end with its `Score:` / `Verdict:` line, so even a
    small judge is parsable (vLLM and vLLM servers; turn off for servers without structured outputs)."""
    max_parse_fail: float = Field(0.5, ge=0, le=1)
    """Share of unusable judge outputs (unparsable or failed in the engine) tolerated before the run fails."""

    @property
    def tokens(self) -> int:
        return self.max_tokens or (256 if self.rationale else 12)


class DecontaminationConfig(_Strict):
    enabled: bool = True
    eval_files: tuple[str, ...] = ("../shared/data/gsm8k/test.jsonl",)
    """JSONL/Parquet files of evaluation questions (relative to the recipe's folder, or absolute)."""
    field: str = "question"
    ngram: int = Field(13, ge=3, le=50)
    """Word n-gram length; 13 as in GPT-3's contamination study."""
    min_overlap: float = Field(0.0, ge=0, le=1)
    """Drop a prompt when more than this share of its n-grams appear in an eval set (0: any shared n-gram)."""


class ProcessConfig(_Strict):
    """Step-level supervision: which chains to label and how (flows/process.py)."""

    chains: Literal["samples", "reference", "both"] = "samples"
    """Label the policy's own samples (Math-Shepherd), the reference solutions, or both."""
    split: Literal["newline", "step_marker", "sentence"] = "newline"
    """How a solution becomes steps: one a line, at `Step k:` markers, or one a sentence."""
    method: Literal["mc", "omegaprm"] = "mc"
    """`mc`: k rollouts from every step prefix (Math-Shepherd); `omegaprm`: binary search for the
    first error over MC estimates in a tree per question (OmegaPRM)."""
    rollouts: int = Field(8, ge=1, le=64)
    """Rollouts per step prefix (Math-Shepherd uses 8)."""
    max_tokens: int = Field(256, ge=8)
    """New tokens per rollout."""
    temperature: float = Field(0.7, ge=0, le=2)
    seed: int = 2024
    max_steps: int = Field(16, ge=1)
    """Chains with more steps are not labelled (counted as `too_many_steps`)."""
    budget: int = Field(64, ge=1)
    """OmegaPRM: rollouts per question (the search stops there; unfinished chains get status `budget`)."""
    width: int = Field(1, ge=1)
    """OmegaPRM: candidates of a question searched at once; 1 is the paper's loop, where each Q + U
    selection sees the searches before it (questions are batched together either way)."""
    explore: bool = False
    """OmegaPRM: also search the wrong rollouts met on the way (the paper's tree search), with the
    budget the chains leave; they become extra rows with source `rollout`."""
    early_stop: bool = False
    """OmegaPRM: end a check at its first correct rollout; cheaper, but such a check publishes no
    value (null, with its n), since a share cut at the first success is biased."""
    alpha: float = Field(0.5, gt=0, le=1)
    """OmegaPRM: Q's weight on a state's MC value, alpha^(1 - MC) (the paper's 0.5)."""
    beta: float = Field(0.9, gt=0, le=1)
    """OmegaPRM: Q's length penalty, beta^(len(rollout) / L) (the paper's 0.9)."""
    L: int = Field(500, ge=1)
    """OmegaPRM: Q's length scale in tokens (the paper's 500)."""
    c_puct: float = Field(0.125, ge=0)
    """OmegaPRM: weight of U, the bonus of rarely selected states (the paper's 0.125; 0: none)."""
    witness: bool = True
    """A chain whose own final answer verifies gets every label True and no first error (Math-Shepherd's
    definition: a step is good when it can reach the answer, and the chain itself does). False: its
    labels come from the rollouts alone, as ProcessBench counts a lucky chain (a wrong step, a right
    answer) as erroneous; on the simulator with 15% lucky recoveries this gains ~4 points of MC@8
    first-error F1 (bench/labels.py)."""
    consensus: bool = False
    """Keep a chain's labels only where an LLM judge (the `judge` section) names the same first
    wrong step as the rollouts, or both say none (The Lessons of Developing PRMs)."""
    balance: bool = False
    """Keep as many chains with an error as without one."""


class RunConfig(_Strict):
    dataset: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Dataset name in the store; versions go to `<store>/<dataset>/vNNNN/`."""
    flow: Literal["preference", "process"] = "preference"
    """`preference`: pairs for DPO (flows/preference.py); `process`: step labels for PRMs (flows/process.py)."""
    source: SourceConfig
    engine: EngineConfig = EngineConfig()
    decontamination: DecontaminationConfig = DecontaminationConfig(enabled=False)
    generate: GenerateConfig = GenerateConfig()
    verify: VerifyConfig = VerifyConfig()
    vote: VoteConfig = VoteConfig()
    judge: JudgeConfig = JudgeConfig()
    filters: FiltersConfig = FiltersConfig()
    pairs: PairsConfig = PairsConfig()
    process: ProcessConfig = ProcessConfig()
    rise: RiseConfig = RiseConfig()
    runner: RunnerConfig = RunnerConfig()
    """Where the engine calls run (`local`, or `ray` replicas); not part of the dataset's content."""


def config_hash(model: BaseModel) -> str:
    return hashlib.sha256(json.dumps(model.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


def _set_dotted(data: dict[str, Any], dotted: str, value: Any, *, origin: str) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{origin}: cannot set {cut(repr(dotted))}: {cut(repr(key))} is not a section")
        node = child
    node[keys[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`key.sub=value` pairs; values parse as YAML scalars (`8`, `true`, `null`, `[a, b]`)."""
    out = json.loads(json.dumps(data))
    for item in overrides:
        key, sep, raw = item.partition("=")
        origin = f"--set {cut(repr(item))}"
        if not sep or not key.strip():
            raise ConfigError(f"{origin}: expected KEY=VALUE", hint="e.g. --set generate.n=8")
        try:
            value = parse_yaml(raw, name="--set")
        except (yaml.YAMLError, RecursionError) as exc:
            problem = cut(exc) if isinstance(exc, RecipeProblem) else getattr(exc, "problem", None) or cut(exc)
            raise ConfigError(
                f"{origin}: the value is not valid YAML ({problem})", hint="quote text, e.g. --set 'generate.stop=[\"\\n\\n\"]'"
            ) from None
        _set_dotted(out, key.strip(), value, origin=origin)
    return out


def _format_errors(origin: str, exc: ValidationError | None, strict: dict[tuple[str, ...], str]) -> str:
    lines = [f"{origin}: invalid recipe"]
    shown = set()
    for err in exc.errors() if exc is not None else ():
        loc = tuple(str(p) for p in err["loc"])
        if loc in strict:
            if loc not in shown:
                lines.append(f"  {'.'.join(loc)}: {strict[loc]}")
                shown.add(loc)
            continue
        where = ".".join(loc) or "(top level)"
        got = "" if err["type"] in ("missing", "value_error") else f" (got {cut(repr(err['input']))})"
        lines.append(f"  {where}: {cut(err['msg'], 500)}{got}")
    lines += [f"  {'.'.join(loc)}: {msg}" for loc, msg in strict.items() if loc not in shown]
    return "\n".join(lines)


def _from_recipe_folder(value: Any, base: Path) -> Any:
    """A relative path that exists next to the recipe is taken from there; anything else is kept."""
    if not isinstance(value, str):
        return value
    path = Path(value).expanduser()
    try:
        return str((base / path).resolve()) if not path.is_absolute() and (base / path).exists() else value
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return value


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    source = data.get("source")
    if isinstance(source, dict) and "path" in source:
        source["path"] = _from_recipe_folder(source["path"], base)
    decontamination = data.get("decontamination")
    if isinstance(decontamination, dict) and isinstance(decontamination.get("eval_files"), list):
        decontamination["eval_files"] = [_from_recipe_folder(f, base) for f in decontamination["eval_files"]]


def validate_config(data: Any, *, origin: str = "config") -> RunConfig:
    """A recipe (a mapping of sections) as a `RunConfig`; every bad field is listed in one `ConfigError`.

    Scalar fields are strict: a quoted number for a number, 4.0 for an integer or "yes" for a boolean
    is refused, naming the field, the type expected and the value given."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of sections, got {type(data).__name__}")
    strict = strict_errors(RunConfig, data)
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(origin, exc, strict), hint="see configs/demo.yaml for every key") from None
    except RecursionError:
        raise ConfigError(f"{origin}: nested too deeply (a value that contains itself?)") from None
    if strict:
        raise ConfigError(_format_errors(origin, None, strict), hint="see configs/demo.yaml for every key")
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read, override and validate a recipe; a relative `source.path` is taken from the recipe's folder.

    Refused with a `ConfigError` naming the file (and line where there is one): a folder, a file over
    1 MB, text that is not UTF-8, invalid YAML, a key given twice in one mapping, aliases that expand
    to more than 100,000 values or contain themselves, nesting too deep to parse."""
    path = Path(path)
    text = read_recipe_text(path)
    try:
        data = parse_yaml(text, name=str(path))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to parse") from None
    if isinstance(data, dict):
        data = apply_overrides(data, overrides or [])
        _resolve_paths(data, path.parent)
    return validate_config(data, origin=str(path))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    return cut(exc, 1000) if isinstance(exc, RecipeProblem) else f"not valid YAML: {cut(exc, 1000)}"
