"""What a run shows in Prefect's UI: a table of rows out of each stage, a markdown summary and the
histograms of the dataset card as images."""

from __future__ import annotations

import base64
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from prefmill.card_plots import draw_plots
from prefmill.config import RunConfig


def artifact_key(dataset: str) -> str:
    """Prefect artifact keys allow lower-case letters, digits and dashes."""
    return "".join(c if c.isalnum() else "-" for c in dataset.lower())


def stage_counts(cfg: RunConfig, version: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    create_table_artifact(
        key=f"{artifact_key(cfg.dataset)}-stage-counts", table=rows,
        description=f"{cfg.dataset} {version['version']}: rows out of each stage",
    )


def histogram_artifact(dataset: str, version: dict[str, Any]) -> str | None:
    """The card's plots (`version["stats"]`' histograms) as one markdown artifact with the PNGs inline
    (data: URIs): Prefect's image artifact only links a public URL, and a run's plots have none. Returns
    the artifact's key, None when the version has no histogram."""
    plots = draw_plots(version)
    if not plots:
        return None
    key = f"{artifact_key(dataset)}-histograms"
    lines = [f"# {dataset} {version['version']}: histograms", ""]
    for plot in plots:
        counts = ", ".join(f"{label} {height:g}" for label, height in zip(plot.labels, plot.heights))
        lines += [f"![{plot.title}](data:image/png;base64,{base64.b64encode(plot.png).decode('ascii')})", "",
                  f"{plot.title}: {counts}", ""]
    create_markdown_artifact(key=key, markdown="\n".join(lines),
                             description=f"{dataset} {version['version']}: the dataset card's plots")
    return key


def preference_artifacts(cfg: RunConfig, n_prompts: int, version: dict[str, Any]) -> None:
    stats = version["stats"]
    s, p = stats["samples"], stats["pairs"]
    rows = [{"stage": "load-prompts", "rows_out": n_prompts, "note": cfg.source.path}]
    if "decontamination" in stats:
        d = stats["decontamination"]
        rows.append({"stage": "decontaminate", "rows_out": d["prompts"] - d["dropped"], "note": f"dropped={d['dropped']}"})
    rows += [
        {"stage": "generate", "rows_out": s["samples"], "note": f"n={cfg.generate.n}, failures={s['engine_failures']}"},
        {"stage": "verify", "rows_out": s["correct"], "note": f"correct; pass@n={s['pass_at_n']}"},
    ]
    if "votes" in stats:
        rows.append({"stage": "vote", "rows_out": stats["votes"]["prompts"], "note": f"difficulty={stats['votes']['difficulty']}"})
    if "judge" in s:
        rows.append({"stage": "judge-pointwise", "rows_out": s["judge"]["judged"], "note": f"mean score={s['judge']['mean_score']}"})
    if "rise" in stats:
        r = stats["rise"]
        rows.append({"stage": "rise", "rows_out": r["kept"], "note": f"edits kept of {r['edits']}; dropped={r['dropped']}"})
    rows.append({"stage": "pairs", "rows_out": p["pairs"], "note": f"strategy={p['strategy']}, dropped={p['dropped']}"})
    stage_counts(cfg, version, rows)
    sep = p["separability"]
    create_markdown_artifact(
        key=f"{artifact_key(cfg.dataset)}-version",
        markdown=(
            f"# {cfg.dataset} {version['version']}\n\n"
            f"{'New version' if version['created'] else 'Unchanged: identical to the latest version'} at "
            f"`{version['path']}`.\n\n| | |\n|---|---|\n"
            f"| prompts | {s['prompts']} |\n| samples | {s['samples']} |\n| accuracy | {s['accuracy']} |\n"
            f"| pass@n | {s['pass_at_n']} |\n| pairs ({cfg.pairs.strategy}) | {p['pairs']} |\n"
            f"| chosen from | {p['chosen_source']} |\n| dropped | {p['dropped']} |\n"
            f"| mean margin | {sep.get('mean_margin')} |\n| same-model share | {sep.get('same_model_share')} |\n"
            f"| length diff chosen-rejected (chars, mean) | {(sep.get('length_diff_chars') or {}).get('mean')} |\n"
        ),
        description=f"{cfg.dataset} {version['version']} summary",
    )
    histogram_artifact(cfg.dataset, version)


def process_artifacts(cfg: RunConfig, n_prompts: int, version: dict[str, Any]) -> None:
    steps, cache = version["stats"]["steps"], version["stats"]["steps"]["rollout_cache"]
    stage_counts(cfg, version, [
        {"stage": "load-prompts", "rows_out": n_prompts, "note": cfg.source.path},
        {"stage": "generate", "rows_out": version["stats"]["samples"]["samples"], "note": f"n={cfg.generate.n}"},
        {"stage": "chains", "rows_out": steps["labelled"], "note": f"dropped={steps['dropped']}"},
        {"stage": f"label ({cfg.process.method})", "rows_out": steps["published"],
         "note": f"steps +{steps['positive_steps']}/-{steps['negative_steps']}, rollout tokens={steps['rollout_tokens']}"},
        {"stage": "rollout cache", "rows_out": cache["hits"], "note": f"hits; misses={cache['misses']}"},
    ])
    histogram_artifact(cfg.dataset, version)
