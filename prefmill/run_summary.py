"""The table `prefmill run` prints when a version is published."""

from __future__ import annotations

from rich.table import Table


def summary_table(result: dict) -> Table:
    """What a finished `prefmill run` prints: the version and its main counts."""
    s = result["stats"]["samples"]
    title = f"{result['dataset']} {result['version']}" + ("" if result["created"] else " (unchanged: identical to latest)")
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [("prompts", s["prompts"]), ("samples", s["samples"]), ("correct samples", s["correct"]),
            ("accuracy", s["accuracy"]), ("engine failures", s["engine_failures"])]
    if "steps" in result["stats"]:
        st = result["stats"]["steps"]
        rows += [
            ("chains labelled", f"{st['published']} of {st['chains']}"),
            ("steps (+/-)", f"{st['steps']} ({st['positive_steps']}/{st['negative_steps']})"),
            ("chains with an error", st["chains_with_error"]),
            ("rollout tokens", st["rollout_tokens"]),
            ("rollout cache hits/misses", f"{st['rollout_cache']['hits']}/{st['rollout_cache']['misses']}"),
        ]
    for name, value in rows:
        table.add_row(name, str(value))
    if "pairs" in result["stats"]:
        _pair_rows(table, result["stats"]["samples"], result["stats"]["pairs"])
    if "rise" in result["stats"]:
        r = result["stats"]["rise"]
        table.add_row("RISE edits kept", f"{r['kept']} of {r['edits']} ({', '.join(f'{k}={v}' for k, v in r['by_editor'].items()) or '-'})")
        table.add_row("RISE edits dropped", ", ".join(f"{k}={v}" for k, v in r["dropped"].items()) or "-")
    return table


def _pair_rows(table: Table, s: dict, p: dict) -> None:
    for name, value in [
        ("pass@n", s["pass_at_n"]), ("mean tokens", s["mean_tokens"]),
        ("pairs", f"{p['pairs']} ({', '.join(p['strategy']) or '-'})"),
        ("chosen from", ", ".join(f"{k}={v}" for k, v in p["chosen_source"].items()) or "-"),
        ("dropped candidates", ", ".join(f"{k}={v}" for k, v in p["dropped"].items()) or "-"),
        ("mean margin", p["separability"].get("mean_margin", "-")),
    ]:
        table.add_row(name, str(value))
