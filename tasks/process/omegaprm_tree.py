"""One question's OmegaPRM search tree (tasks.process.omegaprm runs the search for all questions):
states with fresh rollout counts, the (state, rollout) candidate pool, Q + U selection, and the binary
search of a selected rollout for its first step whose prefix has MC value 0."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from prefmill.answers import judge
from prefmill.config import VerifyConfig
from prefmill.engines.base import GenRequest, GenResult, Sampling
from prefmill.seeds import rollout_seed
from prefmill.tasks.process.omegaprm_values import Node, OmegaConfig, chain_row, prefix_key
from prefmill.tasks.process.step_labels import chain_verdict
from prefmill.tasks.process.steps import steps_of


@dataclass
class Candidate:
    """A (state, rollout) pair: `steps` of the rollout, searched from step prefix `start` (the state)."""

    chain_id: str
    steps: list[str]
    start: int
    length: int
    source: str = "chain"
    status: str | None = None
    first_error: int | None = None
    rollouts: int = 0
    tokens: int = 0
    correct: bool = False

    def key(self, j: int) -> str:
        return prefix_key(self.steps, j)


def q_value(mc: float, length: int, cfg: OmegaConfig) -> float:
    """Q(s, r) = alpha^(1 - MC(s)) * beta^(len(r) / L)."""
    return cfg.alpha ** (1 - mc) * cfg.beta ** (length / cfg.L)


def u_value(visits: int, total: int, cfg: OmegaConfig) -> float:
    """U(s) = c_puct * sqrt(sum over the tree of N) / (1 + N(s))."""
    return cfg.c_puct * math.sqrt(total) / (1 + visits)


def select(candidates: Sequence[Candidate], nodes: dict[str, Node], cfg: OmegaConfig) -> int:
    """Index of the candidate with the largest Q + U (the first on ties)."""
    total = sum(node.visits for node in nodes.values())

    def score(c: Candidate) -> float:
        state = nodes.get(c.key(c.start), Node())
        return q_value(state.mc, c.length, cfg) + u_value(state.visits, total, cfg)

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
        self.pool: list[Candidate] = []  # input chains, searched first: they are what the stage labels
        self.explored: list[Candidate] = []  # wrong rollouts of positive states (with `explore`)
        self.searched: list[Candidate] = []  # explored candidates selected, in order
        self.active: list[Candidate] = []
        self._seen: set[tuple[int, str]] = set()
        self._pending: dict[str, tuple[Candidate, int]] = {}
        for chain_id, steps in chains:
            c = Candidate(chain_id, list(steps), 0, len(" ".join(steps).split()))
            c.correct = chain_verdict(c.steps, reference, verify_cfg)
            if c.correct:  # a witness of each of its prefixes
                self._witness(c.steps, len(c.steps))
            if c.correct or not steps:
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

    def _witness(self, steps: Sequence[str], last: int) -> None:
        for j in range(last + 1):
            self.node(prefix_key(steps, j)).witness = True

    def _positive(self, c: Candidate, j: int) -> bool:
        node = self.nodes.get(c.key(j))
        return node is not None and node.positive()

    def _advance(self, c: Candidate) -> int | None:
        """The prefix length c needs checked next, from the tree's evidence as it is now; None when c
        is finished (c.status set) or waits for a check in flight."""
        k, size = self.cfg.rollouts_per_check, len(c.steps)
        state = self.node(c.key(c.start))  # an input chain's is the root; an explored one's is positive
        if not state.positive():
            if state.failed or state.negative(k):
                c.status = "engine_error" if state.failed else "unsolved"
                return None
            return None if state.in_flight else c.start
        # a positive prefix overrules MC = 0 at shorter ones (its right continuation passes through them)
        lo = max(j for j in range(c.start, size + 1) if j == c.start or self._positive(c, j))
        if lo == size:  # the whole rollout is witnessed: nothing wrong in it
            c.status, c.first_error = "labelled", None
            return None
        hi = next((j for j in range(lo + 1, size) if (n := self.nodes.get(c.key(j))) and n.negative(k)), size)
        if hi - lo <= 1:
            c.status, c.first_error = "labelled", hi - 1
            return None
        mid = lo + min(max(int((hi - lo) * self.cfg.split), 1), hi - lo - 1)
        node = self.node(c.key(mid))
        if node.failed:
            c.status = "engine_error"
            return None
        return None if node.in_flight else mid

    def _batch(self, node: Node) -> int:
        need = max(self.cfg.rollouts_per_check - node.n, 1)
        return min(need, max(self.cfg.first_batch, node.started)) if self.cfg.early_stop else need

    def _fill(self) -> None:
        """Select candidates (max Q + U) until `width` are active; explored ones only while a check fits."""
        for node in self.nodes.values():  # wrong rollouts of states now known positive join the pool
            if node.wrong and node.positive():
                self.explored += node.wrong
                node.wrong = []
        k = self.cfg.rollouts_per_check
        smallest = min(self.cfg.first_batch, k) if self.cfg.early_stop else k
        while len(self.active) < self.cfg.width:
            pool = self.pool or (self.explored if self.rollouts + smallest <= self.cfg.budget else [])
            if not pool:
                return
            c = pool.pop(select(pool, self.nodes, self.cfg))
            self.node(c.key(c.start)).visits += 1
            self.active.append(c)
            if c.source == "rollout":
                self.searched.append(c)

    def _reopen(self) -> None:
        """A finished candidate whose first wrong prefix has since been witnessed is searched again."""
        for c in self.inputs + self.searched:
            if c.status == "labelled" and c.first_error is not None and self._positive(c, c.first_error + 1):
                c.status = c.first_error = None
                if c not in self.active:
                    self.active.append(c)

    def plan(self) -> list[GenRequest]:
        """This round's prefix checks: at most one per active candidate, never two for one prefix."""
        requests: list[GenRequest] = []
        self._reopen()
        while True:
            self._fill()
            progressed = False
            for c in list(self.active):
                j = self._advance(c)
                if j is not None:
                    node = self.node(c.key(j))
                    n = self._batch(node)
                    if self.rollouts + n > self.cfg.budget:
                        c.status = "budget"
                    else:
                        requests.append(self._request(c, j, n, first=node.started))
                        node.fixed = node.fixed or (node.started == 0 and n >= self.cfg.rollouts_per_check)
                        node.in_flight, node.started = True, node.started + n
                        self.rollouts, c.rollouts = self.rollouts + n, c.rollouts + n
                if c.status is not None:
                    self.active.remove(c)
                    progressed = True
            if requests or not progressed:
                return requests

    def _request(self, c: Candidate, j: int, n: int, *, first: int) -> GenRequest:
        """Samples first..first+n-1 of prefix j's rollout stream: a later batch never repeats an earlier one."""
        self._seq += 1
        request_id = f"{self.prompt_id}|{self._seq}"
        self._pending[request_id] = (c, j)
        turn = (*({"role": m["role"], "content": m["content"]} for m in self.prompt),
                {"role": "assistant", "content": c.key(j)})
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
            partial = c.key(j)
            for completion in result.completions:
                c.tokens += completion.num_tokens
                self.tokens += completion.num_tokens
                if completion.finish_reason == "error":
                    continue
                text = partial + completion.text
                ok = self._judge(text, truncated=completion.finish_reason == "length")
                node.n, node.correct = node.n + 1, node.correct + ok
                steps = steps_of(text)
                through = steps[:j] == c.steps[:j]  # else the continuation merged into the last step
                if ok and through and self.cfg.share_rollouts:  # a right solution: a witness of all its prefixes
                    self._witness(steps, len(steps))
                elif ok:
                    self._witness(c.steps, j)
                elif self.cfg.explore and through and len(steps) > j and (j, text) not in self._seen:
                    self._seen.add((j, text))
                    node.wrong.append(Candidate(f"{self.prompt_id}|omega|{len(self._seen) - 1}", steps, j,
                                                completion.num_tokens, "rollout"))

    def rows(self, engine: str) -> list[dict]:
        """Output rows: the input chains in order, then the explored rollouts that were searched."""
        k = self.cfg.rollouts_per_check
        searched = [c for c in self.searched if c.status == "labelled" or c.rollouts]
        return [chain_row(c, self.prompt_id, self.prompt, self.nodes, k=k, engine=engine) for c in self.inputs + searched]

    def result(self, engine: str) -> dict:
        """The JSON-serialisable checkpoint of a finished question: its rows and its tree's fresh counts."""
        return {"prompt_id": self.prompt_id, "rows": self.rows(engine),
                "rollouts": self.rollouts, "rollout_tokens": self.tokens,
                "nodes": [[key, node.n, node.correct] for key, node in self.nodes.items() if node.n]}

