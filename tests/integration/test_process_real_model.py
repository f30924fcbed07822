"""The process-supervision demo on the real model, and one training step of a PRM on its output."""

from __future__ import annotations

import math

import datasets
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from prefmill.cli import app
from prefmill.models import default_model_dir
from prefmill.schemas.tables import STEP_PAIRS
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]
PRM_DEMO = ROOT / "configs" / "prm-demo.yaml"


def _train_one_prm_step(ds: datasets.Dataset) -> tuple[float, bool]:
    """TRL's stepwise format into a token-classification PRM (label at each step's last token)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForTokenClassification

    tokenizer = AutoTokenizer.from_pretrained(default_model_dir())
    torch.manual_seed(0)
    model = LlamaForTokenClassification(
        LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                    num_attention_heads=2, num_key_value_heads=2, num_labels=2)
    )
    ids, labels = [], []
    for row in ds:
        tokens = tokenizer(row["prompt"] + "\n", add_special_tokens=False)["input_ids"]
        target = [-100] * len(tokens)
        for step, label in zip(row["completions"], row["labels"], strict=True):
            step_ids = tokenizer(step + "\n", add_special_tokens=False)["input_ids"]
            tokens += step_ids
            target += [-100] * (len(step_ids) - 1) + [int(label)]
        ids.append(tokens)
        labels.append(target)
    width = max(map(len, ids))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batch = {
        "input_ids": torch.tensor([t + [pad] * (width - len(t)) for t in ids]),
        "attention_mask": torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in ids]),
        "labels": torch.tensor([t + [-100] * (width - len(t)) for t in labels]),
    }
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    changed = any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    return float(loss), changed


def test_prm_demo_labels_steps_on_the_real_model_and_trains_a_prm(tmp_path, real_engine):
    store = tmp_path / "store"

    result = CliRunner().invoke(app, ["run", str(PRM_DEMO), "--store", str(store)])

    assert result.exit_code == 0, result.output
    version = store / "gsm8k-prm-demo" / "v0001"
    assert result.output.strip().splitlines()[-1] == str(version)
    ds = datasets.load_dataset("parquet", data_files=str(version / "data" / "steps" / "*.parquet"), split="train")
    # 4 reference chains + 4 x 2 sampled chains (those whose every step got a label).
    assert 4 <= ds.num_rows <= 12 and str(ds.features["labels"].feature.dtype) == "bool"
    assert sum(row["chain_id"].endswith("-reference") for row in ds) == 4
    for row in ds:
        assert len(row["completions"]) == len(row["labels"]) == len(row["values"]) == len(row["rollout_counts"])
        counts, values, labels = row["rollout_counts"], row["values"], row["labels"]
        # k = 4 rollouts a step; the complete solution (stating its answer) is judged, not rolled out
        assert all(count == 4 for count in counts[:-1]) and counts[-1] in (0, 4)
        assert not any(a is False and b is True for i, a in enumerate(labels) for b in labels[i + 1:])  # monotone
        if counts[-1] == 0 and values[-1] == 1.0:  # a verified-correct chain is a witness for every prefix
            assert all(labels)
        else:
            first = labels.index(False) if False in labels else len(labels)
            assert labels[:first] == [v > 0 for v in values[:first]]
        assert row["method"] == "mc" and row["engine"] == real_engine.fingerprint

    # A 135M policy rarely finishes even a reference prefix, so there may be no contrast to pair.
    pairs = pq.read_table(version / "data" / "step_pairs" / "train-00000-of-00001.parquet")
    assert pairs.schema.remove_metadata() == STEP_PAIRS
    for pair in pairs.to_pylist():  # same prefix; the chosen step can still reach the answer, the rejected cannot
        assert pair["chosen_value"] > 0 == pair["rejected_value"]
        assert pair["prompt"][0]["role"] == "user" and pair["chosen"][0]["role"] == "assistant"

    loss, changed = _train_one_prm_step(ds)

    assert math.isfinite(loss) and changed
