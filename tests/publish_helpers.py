"""What the publish tests share: tiny tables of every config, a store holding them, and a recorded
fake HfApi (same signatures, an in-memory repository, never the network)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from prefmill.schemas.tables import PAIRS, RISE_STEPS, SCORED, STEP_PAIRS, STEPS, VOTES
from prefmill.schemas.validate import conform

from prefmill.store import publish_version

Q = [{"role": "user", "content": "Tom has 3 apples and buys 2. How many?"}]
TOKEN = "hf_SeCrEtToKeN1234567890abcdef"


def _table(schema: pa.Schema, columns: dict) -> pa.Table:
    return conform(pa.table(columns), schema, where="test", fill_nullable=True)


def _samples(n: int) -> pa.Table:
    return _table(SCORED, {
        "sample_id": [f"s{i}" for i in range(n)], "prompt_id": [f"p{i // 2}" for i in range(n)],
        "sample_index": [i % 2 for i in range(n)], "prompt": [Q] * n, "completion": [f"3 + 2 = 5\n#### {5 + i % 2}" for i in range(n)],
        "num_tokens": [9] * n, "finish_reason": ["stop"] * n, "engine": ["scripted:t"] * n,
        "reference_answer": ["5"] * n, "extracted": [str(5 + i % 2) for i in range(n)], "correct": [i % 2 == 0 for i in range(n)],
        "judge_scores": [[7, 8]] * n,
    })


def _pairs(n: int) -> pa.Table:
    return _table(PAIRS, {
        "pair_id": [f"s{2 * i}~s{2 * i + 1}" for i in range(n)], "prompt_id": [f"p{i}" for i in range(n)], "prompt": [Q] * n,
        "chosen": [[{"role": "assistant", "content": "3 + 2 = 5\n#### 5"}]] * n,
        "rejected": [[{"role": "assistant", "content": "3 + 2 = 6\n#### 6"}]] * n,
        "strategy": ["verified_vs_incorrect"] * (n - 1) + ["rise"], "chosen_source": ["sample"] * n,
        "rejected_sample_id": [f"s{2 * i + 1}" for i in range(n)], "chosen_engine": ["scripted:t"] * n,
        "rejected_engine": ["scripted:t"] * n, "margin": [0.9] * n, "curriculum_rank": list(range(n)), "weight": [1.0] * n,
        "swap_consistent": [True] * (n - 1) + [None], "error_type": [None] * (n - 1) + ["change_number"],
        "edit_span": [None] * (n - 1) + [{"start": 4, "end": 5}],
        "edit_diff": [None] * (n - 1) + [[{"op": "replace", "chosen_start": 4, "chosen_end": 5, "rejected_start": 4,
                                          "rejected_end": 5}]],
    })


def _votes(n: int) -> pa.Table:
    return _table(VOTES, {
        "prompt_id": [f"p{i}" for i in range(n)], "n_samples": [2] * n, "n_answered": [2] * n, "n_classes": [2] * n,
        "majority_answer": ["5"] * n, "vote_share": [0.5] * n, "weighted_share": [0.5] * n, "pass_rate": [0.5] * n,
        "label_source": ["reference"] * n, "label_confidence": [1.0] * n, "difficulty": ["medium"] * n,
    })


def _rise_steps(n: int) -> pa.Table:
    return _table(RISE_STEPS, {
        "pair_id": [f"e{i}" for i in range(n)], "prompt_id": [f"p{i}" for i in range(n)], "prompt": [Q] * n,
        "prefix": [""] * n, "chosen": [[{"role": "assistant", "content": "3 + 2 = 5"}]] * n,
        "rejected": [[{"role": "assistant", "content": "3 + 2 = 6"}]] * n, "error_type": ["change_number"] * n,
        "edited_step": [0] * n, "edit_span_chosen": [{"start": 8, "end": 9}] * n,
        "edit_span_rejected": [{"start": 8, "end": 9}] * n, "changed_share": [0.2] * n, "editor": ["rules"] * n,
        "source": ["reference"] * n,
    })


def _steps(n: int) -> pa.Table:
    return _table(STEPS, {
        "prompt": ["Tom has 3 apples and buys 2. How many?"] * n, "completions": [["3 + 2 = 5", "#### 5"]] * n,
        "labels": [[True, i % 2 == 0] for i in range(n)], "values": [[1.0, 0.5]] * n, "rollout_counts": [[4, 4]] * n,
        "first_error_step": [None if i % 2 == 0 else 1 for i in range(n)], "method": ["mc"] * n,
        "chain_id": [f"c{i}" for i in range(n)], "prompt_id": [f"p{i}" for i in range(n)], "engine": ["scripted:t"] * n,
    })


def _step_pairs(n: int) -> pa.Table:
    return _table(STEP_PAIRS, {
        "pair_id": [f"sp{i}" for i in range(n)], "prompt_id": [f"p{i}" for i in range(n)], "prompt": [Q] * n,
        "chosen": [[{"role": "assistant", "content": "3 + 2 = 5"}]] * n,
        "rejected": [[{"role": "assistant", "content": "3 + 2 = 6"}]] * n, "prefix_steps": [0] * n,
        "chosen_chain_id": ["c0"] * n, "rejected_chain_id": ["c1"] * n, "kind": ["first_error"] * n, "method": ["mc"] * n,
    })


PREFERENCE_STATS = {
    "samples": {"samples": 8, "prompts": 4, "correct": 4, "accuracy": 0.5, "pass_at_n": 1.0, "mean_tokens": 9.0,
                "finish_reason": {"stop": 8}, "verify_error": {}, "engine_failures": 0,
                "judge": {"judged": 8, "mean_score": 7.5, "parse_errors": {}}},
    "pairs": {"pairs": 4, "candidates": 7, "dropped": {"swap_inconsistent": 2, "no_incorrect_sample": 1},
              "chosen_source": {"sample": 4}, "strategy": {"verified_vs_incorrect": 3, "rise": 1},
              "difficulty": {"medium": 4},
              "separability": {"margin_histogram": {"[0.9, inf)": 3, "[0.8, 0.9)": 1}, "mean_margin": 0.9,
                               "same_model_share": 1.0, "length_diff_chars": {"mean": 0.0, "median": 0.0},
                               "chosen_longer_share": 0.0}},
    "votes": {"prompts": 4, "mean_vote_share": 0.5, "label_source": {"reference": 4}, "difficulty": {"medium": 4}},
    "rise": {"solutions": 4, "edits": 4, "kept": 3, "kept_share": 0.75, "dropped": {"admits_error": 1},
             "by_error_type": {"change_number": {"edits": 3, "kept": 2}, "swap_terms": {"edits": 1, "kept": 1}},
             "by_editor": {"rules": 3}, "mean_changed_share": 0.2, "pairs": 1, "over_ratio": 0},
}
PROCESS_STATS = {
    "steps": {"chains": 5, "dropped": {}, "labelled": 4, "published": 4, "unlabelled": 0, "steps": 8,
              "positive_steps": 6, "negative_steps": 2, "chains_with_error": 2, "first_error_step": {"1": 2},
              "rollout_tokens": 320},
    "step_pairs": {"questions": 4, "pairs": 3, "pairs_first_error": 3, "pairs_contrast": 0},
}


def _recipe(flow: str, source: str = "/data/shared/gsm8k/train.jsonl") -> dict:
    return {"dataset": "x", "flow": flow, "source": {"path": source, "split": "train", "offset": 0, "limit": 4},
            "engine": {"kind": "scripted", "model": "default"},
            "generate": {"n": 2, "temperature": 0.8, "top_p": 0.95, "max_tokens": 256, "seed": 7},
            "pairs": {"strategy": "verified_vs_incorrect", "judge_weight": 0.3},
            "judge": {"pointwise": True, "pairwise": True, "samples": 2},
            "rise": {"enabled": flow == "preference", "editor": "rules"},
            "process": {"method": "mc", "rollouts": 4, "split": "newline"}}


def make_store(root: Path) -> Path:
    """Three datasets: `pref` (4 configs), `prm` (steps, step_pairs) and `other` (2 pairs); prompt ids p0..p3."""
    publish_version(root, "pref", {"samples": _samples(8), "pairs": _pairs(4), "votes": _votes(4), "rise_steps": _rise_steps(3)},
                    config=_recipe("preference"), info={"engine": "scripted:t", "stats": PREFERENCE_STATS})
    publish_version(root, "prm", {"steps": _steps(4), "step_pairs": _step_pairs(3)},
                    config=_recipe("process", source="openai/gsm8k"), info={"engine": "scripted:t", "stats": PROCESS_STATS})
    publish_version(root, "other", {"pairs": _pairs(2)}, config=_recipe("preference", source="/data/mine/prompts.jsonl"),
                    info={"engine": "scripted:t", "stats": {}})
    return root


# --- a recorded HfApi ---


@dataclass
class Ref:
    name: str
    ref: str
    target_commit: str


@dataclass
class Refs:
    tags: list
    branches: list
    converts: list
    pull_requests: list | None = None


@dataclass
class Commit:
    commit_id: str
    title: str
    message: str


@dataclass
class Info:
    oid: str
    commit_url: str
    commit_message: str
    commit_description: str


class RecordingApi:
    """The HfApi methods prefmill calls, same signatures, with an in-memory repository."""

    def __init__(self):
        self.calls: list[tuple[str, tuple, dict]] = []
        self.files: dict[str, bytes] = {".gitattributes": b"*.parquet filter=lfs\n"}
        self.commits: list[Commit] = []
        self.tags: dict[str, str] = {}
        self.repos: set[str] = set()
        self.operations: list = []
        self.track_main = True  # list_repo_refs reports main's head, as the Hub does

    def create_repo(self, repo_id, *, token=None, private=None, visibility=None, repo_type=None, exist_ok=False, **kwargs):
        self.calls.append(("create_repo", (repo_id,), {"private": private, "repo_type": repo_type, "exist_ok": exist_ok}))
        self.repos.add(repo_id)
        return f"https://huggingface.co/datasets/{repo_id}"

    def list_repo_refs(self, repo_id, *, repo_type=None, include_pull_requests=False, token=None):
        self.calls.append(("list_repo_refs", (repo_id,), {"repo_type": repo_type}))
        main = [Ref("main", "refs/heads/main", self.commits[-1].commit_id)] if self.commits and self.track_main else []
        return Refs(tags=[Ref(t, f"refs/tags/{t}", c) for t, c in self.tags.items()], branches=main, converts=[])

    def list_repo_commits(self, repo_id, *, repo_type=None, token=None, revision=None, formatted=False):
        self.calls.append(("list_repo_commits", (repo_id,), {"repo_type": repo_type, "revision": revision}))
        index = next(i for i, c in enumerate(self.commits) if c.commit_id == revision)
        return list(reversed(self.commits[: index + 1]))

    def list_repo_files(self, repo_id, *, revision=None, repo_type=None, token=None):
        self.calls.append(("list_repo_files", (repo_id,), {"repo_type": repo_type}))
        return sorted(self.files)

    def create_commit(self, repo_id, operations, *, commit_message, commit_description=None, token=None, repo_type=None,
                      revision=None, create_pr=None, num_threads=5, parent_commit=None, run_as_future=False):
        operations = list(operations)
        self.calls.append(("create_commit", (repo_id,), {"commit_message": commit_message, "repo_type": repo_type}))
        self.operations.append(operations)
        for op in operations:
            if type(op).__name__ == "CommitOperationDelete":
                self.files.pop(op.path_in_repo)
                continue
            src = op.path_or_fileobj
            self.files[op.path_in_repo] = Path(src).read_bytes() if isinstance(src, (str, Path)) else bytes(src)
        oid = hashlib.sha1(f"{len(self.commits)}{commit_message}".encode()).hexdigest()
        self.commits.append(Commit(oid, commit_message, commit_description or ""))
        return Info(oid, f"https://huggingface.co/datasets/{repo_id}/commit/{oid}", commit_message, commit_description or "")

    def create_tag(self, repo_id, *, tag, tag_message=None, revision=None, token=None, repo_type=None, exist_ok=False):
        self.calls.append(("create_tag", (repo_id,), {"tag": tag, "revision": revision, "repo_type": repo_type}))
        assert tag not in self.tags
        self.tags[tag] = revision

    def delete_tag(self, repo_id, *, tag, token=None, repo_type=None):
        self.calls.append(("delete_tag", (repo_id,), {"tag": tag, "repo_type": repo_type}))
        del self.tags[tag]

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def _version_files(root: Path, dataset: str, version: str = "v0001") -> dict[str, bytes]:
    folder = root / dataset / version
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in (folder / "data").rglob("*.parquet")}
