"""The numbers of a dataset card: the manifest's stats as the card's Quality section (Markdown
tables of every histogram) and PNG plots of the same histograms (`plots/<name>.png`), which the card
links and the run's Prefect artifacts embed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLOTS_DIR = "plots"
"""Where the PNGs sit in a published repository or folder (`plots/<name>.png`)."""


@dataclass(frozen=True)
class Plot:
    """One histogram drawn as a bar chart; `labels` and `heights` are read back from the drawn bars,
    so a test can compare what the PNG shows with the stats."""

    name: str
    title: str
    labels: tuple[str, ...]
    heights: tuple[float, ...]
    png: bytes

    @property
    def path(self) -> str:
        """The PNG's path in a published repository."""
        return f"{PLOTS_DIR}/{self.name}.png"


def histograms(manifest: dict[str, Any]) -> dict[str, tuple[str, dict[str, int]]]:
    """name -> (title, {bin label: count}) for every non-empty histogram of the manifest's stats."""
    stats = manifest.get("stats") or {}
    pairs, steps, rise = stats.get("pairs") or {}, stats.get("steps") or {}, stats.get("rise") or {}
    found = {
        "margin_histogram": ("pairs: chosen - rejected score margin",
                             _sorted_bins((pairs.get("separability") or {}).get("margin_histogram") or {})),
        "first_error_step": ("steps: first wrong step (0-based)",
                             dict(sorted((steps.get("first_error_step") or {}).items(), key=lambda kv: _num(kv[0])))),
        "rise_error_types": ("RISE: kept edits by error type",
                             {k: int(v.get("kept", 0)) for k, v in sorted((rise.get("by_error_type") or {}).items())}),
        "pair_drops": ("pairs: dropped candidates by reason", dict(pairs.get("dropped") or {})),
    }
    return {name: (title, bins) for name, (title, bins) in found.items() if bins}


def plot_paths(manifest: dict[str, Any]) -> list[str]:
    """The PNGs `render_plots` writes, without drawing them: what the card links."""
    return [f"{PLOTS_DIR}/{name}.png" for name in histograms(manifest)]


def draw_plots(manifest: dict[str, Any]) -> list[Plot]:
    """One bar chart per non-empty histogram of the manifest's stats, as PNG bytes."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    plots = []
    for name, (title, bins) in histograms(manifest).items():
        fig = Figure(figsize=(6, 3), dpi=100, layout="tight")
        ax = fig.subplots()
        ax.bar(range(len(bins)), list(bins.values()), color="#4c72b0")
        ax.set_xticks(range(len(bins)), list(bins), rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("count")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        labels = tuple(t.get_text() for t in ax.get_xticklabels())
        heights = tuple(float(r.get_height()) for r in sorted(ax.patches, key=lambda r: r.get_x()))
        plots.append(Plot(name, title, labels, heights, buffer.getvalue()))
    return plots


def render_plots(manifest: dict[str, Any], out_dir: Path) -> list[Plot]:
    """Write `draw_plots`' PNGs into `out_dir` (`<out_dir>/<name>.png`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = draw_plots(manifest)
    for plot in plots:
        (out_dir / f"{plot.name}.png").write_bytes(plot.png)
    return plots


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("inf")


def _sorted_bins(bins: dict[str, int]) -> dict[str, int]:
    """Margin bins like `[0.1, 0.2)`, `(-inf, 0.1)`, `[0.9, inf)` in numeric order."""
    def low(label: str) -> float:
        head = label.strip("[(").split(",")[0].strip()
        return float("-inf") if head == "-inf" else _num(head)

    return dict(sorted(bins.items(), key=lambda kv: low(kv[0])))


def quality_section(stats: dict[str, Any], configs: dict[str, Any], folder: Path | None) -> list[str]:
    """The card's Quality section (Markdown lines) from `manifest["stats"]`; `configs` as
    `card.version_configs` gives them, `folder` the version's folder (None: numbers from the manifest only)."""
    out = ["## Quality", ""]
    if not stats:
        return out + ["The manifest records no statistics.", ""]
    if s := stats.get("samples"):
        out += [(f"**Samples**: {s.get('samples', 0):,} answers to {s.get('prompts', 0):,} prompts; "
                f"accuracy (share verified correct) {_pct(s.get('accuracy'))}, pass@n {_pct(s.get('pass_at_n'))}, "
                f"mean length {s.get('mean_tokens', '?')} tokens; engine failures {s.get('engine_failures', 0)}.")]
        if s.get("finish_reason"):
            out.append(f"Finish reasons: {_counts(s['finish_reason'])}.")
        if s.get("verify_error"):
            out.append(f"No verdict (verify errors): {_counts(s['verify_error'])}.")
        if j := s.get("judge"):
            out.append(f"Pointwise judge: {j.get('judged', 0)} answers judged, mean score {j.get('mean_score')} / 10"
                       + (f", unparsable: {_counts(j['parse_errors'])}" if j.get("parse_errors") else "") + ".")
        out.append("")
    if v := stats.get("votes"):
        out += [(f"**Votes**: mean majority share {_pct(v.get('mean_vote_share'))}; difficulty {_counts(v.get('difficulty') or {})}; "
                f"label source {_counts(v.get('label_source') or {})}."), ""]
    if p := stats.get("pairs"):
        out += [(f"**Pairs**: {p.get('pairs', 0):,} kept of {p.get('candidates', 0):,} candidates; "
                f"strategy {_counts(p.get('strategy') or {})}; chosen side {_counts(p.get('chosen_source') or {})}; "
                f"difficulty {_counts(p.get('difficulty') or {})}."), ""]
        if p.get("dropped"):
            out += ["Dropped candidates by reason:", "", *_table(("reason", "pairs"), p["dropped"].items()), ""]
        if swap := _swap_consistency(p, configs, folder):
            out += [swap, ""]
        if scir := p.get("scir"):
            out += [f"SCIR (agreement of the reward signals): mean agreement {_pct(scir.get('mean_agreement'))}; "
                    + "; ".join(f"{k} {_counts(v)}" for k, v in (scir.get("signals") or {}).items() if v) + ".", ""]
        if cream := p.get("cream"):
            out += [f"CREAM vs `{cream.get('previous_version')}`: {cream.get('pairs_scored', 0)} pairs scored, "
                    f"{cream.get('dropped', 0)} dropped, mean consistency {cream.get('mean_consistency')}, "
                    f"mean label smoothing {cream.get('mean_label_smoothing')}"
                    + (f" ({cream['note']})" if cream.get("note") else "") + ".", ""]
        sep = p.get("separability") or {}
        if sep.get("margin_histogram"):
            bins = histograms({"stats": {"pairs": {"separability": sep}}})["margin_histogram"][1]
            out += ["Margin (chosen score − rejected score) histogram:", "", *_table(("margin", "pairs"), bins.items()), ""]
        if sep:
            diff = sep.get("length_diff_chars") or {}
            out += [(f"Separability: mean margin {sep.get('mean_margin')}, same-model pairs {_pct(sep.get('same_model_share'))}, "
                    f"chosen − rejected length {diff.get('mean')} chars (median {diff.get('median')}), "
                    f"chosen longer in {_pct(sep.get('chosen_longer_share'))}."), ""]
    if r := stats.get("rise"):
        out += [(f"**RISE** (self-edited subtle errors): {r.get('edits', 0)} edits of {r.get('solutions', 0)} solutions, "
                f"{r.get('kept', 0)} kept ({_pct(r.get('kept_share'))}), {r.get('pairs', 0)} became pairs; "
                f"by editor {_counts(r.get('by_editor') or {})}; mean changed share of the edited step "
                f"{_pct(r.get('mean_changed_share'))}."), ""]
        if r.get("by_error_type"):
            rows = [(k, f"{v.get('edits', 0)} | {v.get('kept', 0)}") for k, v in r["by_error_type"].items()]
            out += ["| error type | edits | kept |", "|---|---:|---:|", *(f"| `{k}` | {v} |" for k, v in rows), ""]
        if r.get("dropped"):
            out += [f"Dropped edits: {_counts(r['dropped'])}.", ""]
    if st := stats.get("steps"):
        steps, positive = int(st.get("steps", 0)), int(st.get("positive_steps", 0))
        out += [(f"**Steps**: {st.get('published', 0)} labelled chains published ({st.get('chains', 0)} split), "
                f"{steps:,} steps: {positive:,} labelled right, {int(st.get('negative_steps', 0)):,} wrong "
                f"(label balance {_pct(positive / steps if steps else None)} positive); "
                f"{st.get('chains_with_error', 0)} chains have a first wrong step; {st.get('rollout_tokens', 0):,} rollout tokens."),
                ""]
        if st.get("first_error_step"):
            bins = histograms({"stats": {"steps": st}})["first_error_step"][1]
            out += ["First wrong step (0-based) histogram:", "", *_table(("step", "chains"), bins.items()), ""]
        if st.get("dropped"):
            out += [f"Chains not labelled: {_counts(st['dropped'])}.", ""]
    if c := stats.get("consensus"):
        out += [(f"**Consensus judge**: {c.get('kept', 0)} of {c.get('chains', 0)} chains kept "
                f"({_pct(c.get('kept_share'))}); judge disagrees {c.get('dropped_judge_disagrees', 0)}, "
                f"unparsable {c.get('dropped_judge_unparsable', 0)}."), ""]
    if sp := stats.get("step_pairs"):
        out += [(f"**Step pairs**: {sp.get('pairs', 0)} ({sp.get('pairs_first_error', 0)} at the first error, "
                f"{sp.get('pairs_contrast', 0)} contrast) from {sp.get('questions', 0)} questions."), ""]
    return out


def _swap_consistency(p: dict[str, Any], configs: dict[str, Any], folder: Path | None) -> str | None:
    """Judge swap consistency (A/B vs B/A): the published pairs' `swap_consistent` and the candidates
    the swap filter dropped; None when the pairwise judge was off."""
    dropped = int((p.get("dropped") or {}).get("swap_inconsistent", 0))
    consistent = inconsistent = 0
    if folder is not None and "pairs" in configs:
        import pyarrow.parquet as pq

        try:
            column = pq.read_table(folder / configs["pairs"]["path"], columns=["swap_consistent"])["swap_consistent"]
            values = column.to_pylist()
            consistent, inconsistent = values.count(True), values.count(False)
        except (OSError, KeyError, ValueError):
            pass
    judged = consistent + inconsistent + dropped
    if not judged:
        return None
    return (f"Pairwise judge swap consistency (the same verdict with the answers in both orders): {consistent} of "
            f"{judged} candidates (published pairs judged both ways + those the swap filter dropped) were consistent "
            f"({_pct(consistent / judged)}); {dropped} dropped as swap-inconsistent, {inconsistent} inconsistent kept.")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


def _counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _table(header: tuple[str, str], rows) -> list[str]:
    return [f"| {header[0]} | {header[1]} |", "|---|---:|", *(f"| `{k}` | {v} |" for k, v in rows)]
