"""One question's OmegaPRM search tree (tasks.process.omegaprm runs the search for all questions):
states with rollout counts, (state, rollout) candidates, Q + U selection, and the binary search for the
first step whose prefix has MC value 0."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from prefmill.answers import judge
from prefmill.config import VerifyConfig
from prefmill.engines.base import GenRequest, GenResult, Sampling
from prefmill.seeds import rollout_seed
from prefmill.tasks.process.mc_label import step_prefix
from prefmill.tasks.process.steps import steps_of

METHOD = "omegaprm"

@dataclass(frozen=True)
class OmegaConfig:
    """OmegaPRM search settings; alpha, beta, L and c_puct are the paper's values."""

    rollouts_per_check: int = 8
    """k: rollouts that must all fail before a prefix counts as MC = 0 (Math-Shepherd's N = 8); >= 1."""
    budget: int = 200
    """Most rollouts per question; chains not finished within it get status `budget`; >= 1."""
    alpha: float = 0.5
    """Q's weight on MC: alpha^(1 - MC(s)) prefers states likely to be right; in (0, 1]."""
    beta: float = 0.9
    """Q's weight on length: beta^(len(r) / L) prefers short rollouts; in (0, 1]."""
    L: int = 500
    """Length scale of Q in tokens (whitespace words for input chains); >= 1."""
    c_puct: float = 0.125
    """Exploration weight of U; >= 0, 0 turns exploration off."""
    early_stop: bool = True
    """Stop sampling a prefix at its first correct rollout; False: k rollouts per check in one batch."""
    first_batch: int = 2
    """With early_stop, rollouts in a prefix's first batch; later batches double up to k; >= 1."""
    share_rollouts: bool = True
    """A rollout counts for every prefix of it in the tree, not only where it started."""
    explore: bool = False
    """Also search the wrong rollouts met on the way (extra rows, source `rollout`), within the budget."""
    split: float = 0.5
    """Where between the last MC > 0 prefix (lo) and the first MC = 0 one (hi) to check next, as a share of
    hi - lo; 0.5 is the paper's binary search, smaller leans to the cheap side (a check that finds MC > 0
    stops at its first correct rollout, one that finds MC = 0 costs all k); in (0, 1)."""
    width: int = 4
    """Candidates of one question searched at once (one check each per round); >= 1."""
    max_tokens: int = 512
    temperature: float = 0.8
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low in (("rollouts_per_check", 1), ("budget", 1), ("L", 1), ("first_batch", 1), ("width", 1),
                          ("max_tokens", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"OmegaConfig.{name} must be >= {low}; got {getattr(self, name)}")
        for name in ("alpha", "beta"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"OmegaConfig.{name} must be in (0, 1]; got {getattr(self, name)}")
        if not 0 < self.split < 1:
            raise ValueError(f"OmegaConfig.split must be in (0, 1); got {self.split}")
        if self.c_puct < 0:
            raise ValueError(f"OmegaConfig.c_puct must be >= 0; got {self.c_puct}")


@dataclass
class Node:
    """A state: N rollouts through it, how many verified correct, how many were started from it."""

    n: int = 0
    correct: int = 0
    started: int = 0
    failed: bool = False
    in_flight: bool = False

    @property
    def mc(self) -> float | None:
        return self.correct / self.n if self.n else None

    def positive(self) -> bool:
        return self.correct > 0

    def negative(self, k: int) -> bool:
        return self.correct == 0 and self.n >= k


@dataclass
class Candidate:
    """A (state, rollout) pair: `steps` of the rollout, searched from step prefix `start` (the state)."""

    chain_id: str
    steps: list[str]
    start: int
    length: int
    source: str = "chain"
    lo: int = 0
    hi: int = 0
    status: str | None = None
    first_error: int | None = None
    rollouts: int = 0
    tokens: int = 0

    def key(self, j: int) -> str:
        return step_prefix(self.steps, j)


def q_value(mc: float, length: int, cfg: OmegaConfig) -> float:
    """Q(s, r) = alpha^(1 - MC(s)) * beta^(len(r) / L)."""
    return cfg.alpha ** (1 - mc) * cfg.beta ** (length / cfg.L)


def u_value(n_state: int, n_total: int, cfg: OmegaConfig) -> float:
    """U(s) = c_puct * sqrt(sum over the tree of N) / (1 + N(s))."""
    return cfg.c_puct * math.sqrt(n_total) / (1 + n_state)


def select(candidates: Sequence[Candidate], nodes: dict[str, Node], cfg: OmegaConfig) -> int:
    """Index of the candidate with the largest Q + U (the first on ties)."""
    total = sum(node.n for node in nodes.values())

    def score(c: Candidate) -> float:
        state = nodes.get(c.key(c.start), Node())
        return q_value(state.mc or 0.0, c.length, cfg) + u_value(state.n, total, cfg)

    return max(range(len(candidates)), key=lambda i: (score(candidates[i]), -i))


class QuestionTree:
    """One question's search: `plan()` gives this round's checks, `absorb()` takes their results."""

    def __init__(self, prompt_id: str, prompt: list[dict], chains: Sequence[tuple[str, list[str]]], *,
                 reference: str | None, cfg: OmegaConfig, verify_cfg: VerifyConfig) -> None:
        self.prompt_id, self.prompt, self.reference = prompt_id, prompt, reference
        self.cfg, self.verify_cfg = cfg, verify_cfg
        self.nodes: dict[str, Node] = {}
        self.rollouts = self.tokens = self._seq = 0
        self.inputs: list[Candidate] = []
        self.pool: list[Candidate] = []
        self.explored: list[Candidate] = []
        self.active: list[Candidate] = []
        self._pending: dict[str, tuple[Candidate, int]] = {}
        for chain_id, steps in chains:
            c = Candidate(chain_id, list(steps), 0, len(" ".join(steps).split()))
            ok = self._record(list(steps), 0, self._judge(step_prefix(steps, len(steps)) if steps else ""))
            c.lo, c.hi = (len(steps), len(steps)) if ok else (0, len(steps))
            if ok or not steps:  # right final answer, or nothing to search
                c.status = "labelled"
            self.inputs.append(c)
            if c.status is None:
                self.pool.append(c)

    def node(self, key: str) -> Node:
        return self.nodes.setdefault(key, Node())

    @property
    def finished(self) -> bool:
        return not (self.active or self.pool or self._pending)

    def _judge(self, text: str, truncated: bool = False) -> bool:
        return judge(text, self.reference, truncated=truncated, timeout_seconds=self.verify_cfg.timeout_seconds)[1]

    def _record(self, steps: list[str], j: int, ok: bool) -> bool:
        """Count one rollout of `steps` that started at prefix j (and, shared, at its longer prefixes)."""
        last = len(steps) if self.cfg.share_rollouts else j
        for i in range(j, last + 1):
            node = self.node(step_prefix(steps, i))
            node.n += 1
            node.correct += ok
        return ok

    def _advance(self, c: Candidate) -> int | None:
        """The prefix length c needs checked next; None when c is finished (c.status set)."""
        k, root = self.cfg.rollouts_per_check, self.node(c.key(c.start))
        if not root.positive():
            if root.failed or root.negative(k):
                c.status = "engine_error" if root.failed else "unsolved"
                return None
            return c.start
        c.lo = max([c.lo] + [j for j in range(c.lo + 1, c.hi) if self.node(c.key(j)).positive()])
        c.hi = min([c.hi] + [j for j in range(c.lo + 1, c.hi) if self.node(c.key(j)).negative(k)])
        if c.hi - c.lo <= 1:
            c.status, c.first_error = "labelled", c.hi - 1
            return None
        mid = c.lo + min(max(int((c.hi - c.lo) * self.cfg.split), 1), c.hi - c.lo - 1)
        if self.node(c.key(mid)).failed:
            c.status = "engine_error"
            return None
        return mid

    def _batch(self, node: Node) -> int:
        need = max(self.cfg.rollouts_per_check - node.n, 1)
        return min(need, max(self.cfg.first_batch, node.started)) if self.cfg.early_stop else need

    def plan(self) -> list[GenRequest]:
        """This round's prefix checks: at most one per active candidate, never two for one prefix."""
        requests: list[GenRequest] = []
        while True:
            while len(self.active) < self.cfg.width and (self.pool or (self.cfg.explore and self.explored)):
                pool = self.pool or self.explored
                self.active.append(pool.pop(select(pool, self.nodes, self.cfg)))
            progressed = False
            for c in list(self.active):
                j = self._advance(c)
                if j is not None and not self.node(c.key(j)).in_flight:
                    node, n = self.node(c.key(j)), self._batch(self.node(c.key(j)))
                    if self.rollouts + n > self.cfg.budget:
                        c.status = "budget"
                    else:
                        requests.append(self._request(c, j, n, first=node.started))
                        node.in_flight, node.started = True, node.started + n
                        self.rollouts, c.rollouts = self.rollouts + n, c.rollouts + n
                if c.status is not None:
                    self.active.remove(c)
                    progressed = True
            if requests or not progressed:
                if not requests and not self._pending:  # nothing left to ask: the rest ran out of budget
                    for c in self.pool + self.active:
                        c.status = c.status or "budget"
                    self.pool, self.active = [], []
                return requests

    def _request(self, c: Candidate, j: int, n: int, *, first: int) -> GenRequest:
        """Samples first..first+n-1 of prefix j's rollout stream: a later batch never repeats an earlier one."""
        self._seq += 1
        request_id = f"{self.prompt_id}|{self._seq}"
        self._pending[request_id] = (c, j)
        partial = step_prefix(c.steps, j) if j else ""
        turn = (*({"role": m["role"], "content": m["content"]} for m in self.prompt), {"role": "assistant", "content": partial})
        return GenRequest(
            request_id=request_id,
            messages=turn,
            sampling=Sampling(n=n, temperature=self.cfg.temperature, top_p=self.cfg.top_p,
                              max_tokens=self.cfg.max_tokens, seed=rollout_seed(self.cfg.seed, turn),
                              first_index=first, logprobs=False),
            continue_final=True,
            purpose="rollout",
            inputs={"question": next((m["content"] for m in reversed(self.prompt) if m["role"] == "user"), "")},
        )

    def absorb(self, results: dict[str, GenResult]) -> None:
        """Score this tree's checks among `results` (keyed by request id) into the tree."""
        for request_id in [r for r in self._pending if r in results]:
            c, j = self._pending.pop(request_id)
            node, result = self.node(c.key(j)), results[request_id]
            node.in_flight = False
            if result.error is not None:
                node.failed = True
                continue
            prefix = c.steps[:j]
            partial = step_prefix(prefix, j) if j else ""
            for completion in result.completions:
                c.tokens += completion.num_tokens
                self.tokens += completion.num_tokens
                if completion.finish_reason == "error":
                    continue
                text = partial + completion.text
                ok = self._judge(text, truncated=completion.finish_reason == "length")
                steps = steps_of(text)
                if steps[:j] != prefix:  # the continuation merged into the last step: count it here only
                    node.n, node.correct = node.n + 1, node.correct + ok
                    continue
                self._record(steps, j, ok)
                if self.cfg.explore and not ok and len(steps) > j:
                    self.explored.append(Candidate(f"{self.prompt_id}|omega|{len(self.explored)}", steps, j,
                                                   completion.num_tokens, "rollout", lo=j, hi=len(steps)))

    def rows(self, engine: str) -> list[dict]:
        """Output rows: the input chains in order, then the explored rollouts that were searched."""
        out = []
        for c in self.inputs + [c for c in self.explored if c.status is not None]:
            labelled = c.status == "labelled"
            e = c.first_error if labelled else None
            cut = c.steps if e is None else c.steps[: e + 1]
            out.append({
                "chain_id": c.chain_id, "prompt_id": self.prompt_id, "prompt": self.prompt, "completions": cut,
                "labels": ([True] * len(cut) if e is None else [True] * e + [False]) if labelled else None,
                "values": [self.nodes[k].mc if (k := c.key(j + 1)) in self.nodes else None for j in range(len(cut))],
                "first_error_step": e, "status": c.status, "source": c.source, "method": METHOD, "engine": engine,
                "rollout_tokens": c.tokens, "rollouts": c.rollouts,
            })
        return out

    def result(self, engine: str) -> dict:
        """The JSON-serialisable checkpoint of a finished question: its rows and its tree."""
        return {"prompt_id": self.prompt_id, "rows": self.rows(engine),
                "rollouts": self.rollouts, "rollout_tokens": self.tokens,
                "nodes": [[key, node.n, node.correct] for key, node in self.nodes.items() if node.n]}
