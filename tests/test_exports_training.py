"""Each export trains: a real optimizer step of a tiny Llama (random weights, SmolLM2's tokenizer, no
download) on the file `prefmill export` wrote, read back the way each trainer reads it.

(a) TRL DPOTrainer on `dpo`; (b) a transformers token-classification model on `prm` through
`tokenize_prm`; (c) `openrlhf-prm` through a line-for-line copy of OpenRLHF v0.9.5's
ProcessRewardDataset.__getitem__ / collate_fn and PRMLoss (openrlhf/datasets/process_reward_dataset.py,
openrlhf/models/loss.py; openrlhf >= 0.9.6 has no PRM trainer), hard and soft labels.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest

from prefmill.exports.prm import IGNORE_INDEX, tokenize_prm_dataset
from prefmill.exports.write import export_version
from tests.test_exports import QUESTIONS, STEP_ROWS, load_smollm_tokenizer, publish_preference, publish_process

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")
transformers = pytest.importorskip("transformers")

@pytest.fixture(scope="module")
def smollm_tokenizer():
    return load_smollm_tokenizer()


PLACEHOLDER = "<empty_output>"  # an unused special token of SmolLM2: one token wherever it stands ("ки" is two)


def _config(tokenizer, **kw):
    return transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id, **kw)


def _snapshot(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _changed(model, before: dict) -> list[str]:
    return [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]


def _load(path: Path):
    kind = "json" if path.suffix == ".jsonl" else "parquet"
    return datasets.load_dataset(kind, data_files=str(path), split="train")


# --- (a) TRL DPOTrainer ----------------------------------------------------------------------------------

def test_dpo_export_trains_a_trl_dpo_step(tmp_path, smollm_tokenizer):
    from trl import DPOConfig, DPOTrainer

    publish_preference(tmp_path / "store", n=4)
    out = tmp_path / "pairs-dpo.parquet"
    export_version(tmp_path / "store", "d", None, fmt="dpo", out=out)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(_config(smollm_tokenizer))
    before = _snapshot(model)
    args = DPOConfig(output_dir=str(tmp_path / "dpo"), max_steps=2, per_device_train_batch_size=2, learning_rate=1e-2,
                     bf16=False, use_cpu=True, report_to=[], save_strategy="no", logging_steps=1, disable_tqdm=True,
                     gradient_checkpointing=False, max_length=256)
    ref = copy.deepcopy(model)  # what TRL would load from the model's path; a random-weight model has none
    trainer = DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=_load(out), processing_class=smollm_tokenizer)

    # TRL took the rows as conversational: the prompt went through the chat template, the completion is the turn
    first = trainer.train_dataset[0]
    assert f"<|im_start|>user\n{QUESTIONS[0]}<|im_end|>" in smollm_tokenizer.decode(first["prompt_ids"])
    assert smollm_tokenizer.decode(first["chosen_ids"]).startswith("Natalia sold 48/2 = 24 clips in May.\n#### 72")
    batch = next(iter(trainer.get_train_dataloader()))
    assert set(batch) == {"input_ids", "attention_mask", "completion_mask"}  # ids and scores never reach the model

    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    assert _changed(model, before)


# --- (b) token-classification PRM ----------------------------------------------------------------------

def test_prm_export_trains_a_token_classification_step_with_one_label_per_step(tmp_path, smollm_tokenizer):
    publish_process(tmp_path / "store")
    out = tmp_path / "steps-prm.jsonl"
    export_version(tmp_path / "store", "d", None, fmt="prm", out=out)
    data = _load(out)
    tokenized = tokenize_prm_dataset(data, smollm_tokenizer)
    assert tokenized.column_names == ["input_ids", "attention_mask", "labels"]

    for row, enc in zip(data, tokenized):
        positions = [i for i, label in enumerate(enc["labels"]) if label != IGNORE_INDEX]
        assert len(positions) == len(row["completions"])  # one label per step, none elsewhere
        assert [enc["labels"][i] for i in positions] == [int(x) for x in row["labels"]]
        for i, step in zip(positions, row["completions"]):  # each at the step's last token
            assert smollm_tokenizer.decode(enc["input_ids"][: i + 1]).endswith(step)

    torch.manual_seed(0)
    model = transformers.LlamaForTokenClassification(_config(smollm_tokenizer, num_labels=2))
    before = _snapshot(model)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "prm"), max_steps=1, per_device_train_batch_size=4, learning_rate=1e-2, use_cpu=True,
        report_to=[], save_strategy="no", logging_steps=1, disable_tqdm=True)
    collator = transformers.DataCollatorForTokenClassification(smollm_tokenizer)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=tokenized, data_collator=collator)
    trainer.train()
    (loss,) = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert math.isfinite(loss) and loss > 0
    assert _changed(model, before)


# --- (c) OpenRLHF train_prm, v0.9.5 ------------------------------------------------------------------

def convert_token_to_id(token, tokenizer):  # openrlhf/utils/utils.py
    token = tokenizer.encode(token, add_special_tokens=False)
    assert len(token) == 1
    return token[0]


def openrlhf_item(text, label_values, tokenizer, placeholder_token_id, max_length=2048, reward_tokens=None):
    """ProcessRewardDataset.__getitem__, v0.9.5."""
    input_token = tokenizer(text, max_length=max_length, padding=False, truncation=True, return_tensors="pt",
                            add_special_tokens=False)
    input_ids = input_token["input_ids"]
    assert isinstance(label_values, list), "labels should be a list of strings or numbers"
    if isinstance(label_values[0], str):
        label_tokens = []
        for label in label_values:
            assert reward_tokens is None or label in reward_tokens
            label_tokens.append(convert_token_to_id(label, tokenizer))
        label_tensor = torch.tensor(label_tokens, dtype=input_ids.dtype)
    else:
        label_tensor = torch.tensor(label_values, dtype=torch.float)
    mask = input_ids == placeholder_token_id
    num_placeholders = mask.sum(dim=-1)
    truncated_labels = label_tensor[..., : num_placeholders.max()]
    labels = torch.full_like(input_ids, -100)
    labels[mask] = truncated_labels
    return input_ids, input_token["attention_mask"], labels


def openrlhf_item_v055(text, label_values, tokenizer, placeholder_token_id):
    """The float-label branch of ProcessRewardDataset.__getitem__ in v0.5.0 - v0.5.5.post2."""
    input_ids = tokenizer(text, padding=False, truncation=False, return_tensors="pt", add_special_tokens=False)
    labels = torch.full_like(input_ids["input_ids"], -100, dtype=torch.float)
    labels[input_ids["input_ids"] == placeholder_token_id] = torch.tensor(label_values, dtype=torch.float)
    return input_ids["input_ids"], input_ids["attention_mask"], labels


def zero_pad_sequences(sequences, side="left", value=0):  # openrlhf/utils/utils.py
    max_len = max(seq.size(-1) for seq in sequences)
    padded = [torch.nn.functional.pad(s, (0, max_len - s.size(-1)) if side == "right" else (max_len - s.size(-1), 0),
                                      value=value) for s in sequences]
    return torch.cat(padded, dim=0)


def openrlhf_collate(items, pad_token_id):  # ProcessRewardDataset.collate_fn
    ids, masks, labels = zip(*items)
    return (zero_pad_sequences(list(ids), "right", pad_token_id), zero_pad_sequences(list(masks), "right"),
            zero_pad_sequences(list(labels), "right", pad_token_id))


def prm_loss(inputs, logits, labels, placeholder_token_id, reward_token_ids):  # PRMLoss.forward
    placeholder_mask = inputs == placeholder_token_id
    logits = logits[placeholder_mask].squeeze(1)
    labels = labels[placeholder_mask]
    if labels.dtype == torch.float:
        assert len(reward_token_ids) == 2, "reward_token_ids should have 2 tokens for soft labels"
        logits = logits[..., reward_token_ids]
        positive_labels = labels.to(logits.dtype)
        negative_labels = 1 - positive_labels
        negative_labels[positive_labels != -100] = 1 - positive_labels[positive_labels != -100]
        labels = torch.stack([positive_labels, negative_labels], dim=-1)
    elif reward_token_ids is not None:
        logits = logits[..., reward_token_ids]
        for i, token in enumerate(reward_token_ids):
            labels = torch.where(labels == token, i, labels)
    return torch.nn.CrossEntropyLoss(ignore_index=-100)(logits, labels)


def _openrlhf_step(tokenizer, items, placeholder_id, reward_ids):
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(_config(tokenizer))  # train_prm's Actor: a causal LM
    before = _snapshot(model)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-2)
    inputs, attention_mask, labels = openrlhf_collate(items, tokenizer.pad_token_id)
    loss = prm_loss(inputs, model(inputs, attention_mask=attention_mask).logits, labels, placeholder_id, reward_ids)
    loss.backward()
    optim.step()
    return loss.item(), _changed(model, before)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_openrlhf_hard_export_reads_and_trains_as_train_prm_does(tmp_path, smollm_tokenizer, suffix):
    tok = smollm_tokenizer
    publish_process(tmp_path / "store")
    out = tmp_path / f"steps-openrlhf{suffix}"
    export_version(tmp_path / "store", "d", None, fmt="openrlhf-prm", out=out, placeholder=PLACEHOLDER, tokenizer=tok)
    data = _load(out)  # blending_datasets: load_dataset("json" | "parquet", data_files=path)["train"]
    inputs, labels = data["input"], data["label"]  # train_prm's --input_key / --label_key defaults
    placeholder_id = convert_token_to_id(PLACEHOLDER, tok)
    reward_ids = [convert_token_to_id(t, tok) for t in ("+", "-")]

    items = [openrlhf_item(x, y, tok, placeholder_id, reward_tokens=["+", "-"]) for x, y in zip(inputs, labels)]
    for (ids, _, lab), y, (steps, hard, _) in zip(items, labels, STEP_ROWS):
        assert int((ids == placeholder_id).sum()) == len(y) == len(steps)  # one placeholder token per label
        assert y == ["+" if ok else "-" for ok in hard]
        assert lab[ids == placeholder_id].tolist() == [reward_ids[0] if ok else reward_ids[1] for ok in hard]
        assert int((lab != -100).sum()) == len(steps)

    loss, changed = _openrlhf_step(tok, items, placeholder_id, reward_ids)
    assert math.isfinite(loss) and changed


def test_openrlhf_soft_export_fails_in_v095_and_trains_with_the_float_labels_it_was_made_for(tmp_path, smollm_tokenizer):
    tok = smollm_tokenizer
    publish_process(tmp_path / "store")
    out = tmp_path / "steps-openrlhf-soft.jsonl"
    result = export_version(tmp_path / "store", "d", None, fmt="openrlhf-prm", out=out, labels="soft",
                            placeholder=PLACEHOLDER, tokenizer=tok)
    assert result.skipped == {"null_value": 1}
    data = _load(out)
    placeholder_id = convert_token_to_id(PLACEHOLDER, tok)
    reward_ids = [convert_token_to_id(t, tok) for t in ("+", "-")]
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for y in data["label"] for v in y)

    with pytest.raises(RuntimeError, match="Index put requires the source and destination dtypes match"):
        openrlhf_item(data["input"][0], data["label"][0], tok, placeholder_id)  # the caveat the docs state

    items = [openrlhf_item_v055(x, y, tok, placeholder_id) for x, y in zip(data["input"], data["label"])]
    expected = [r[2] for r in STEP_ROWS if None not in r[2]]
    assert [lab[ids == placeholder_id].tolist() for ids, _, lab in items] == expected
    loss, changed = _openrlhf_step(tok, items, placeholder_id, reward_ids)
    assert math.isfinite(loss) and changed
