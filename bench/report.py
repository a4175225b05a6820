"""The harness's outputs: ``docs/benchmarks.md`` (one table) and ``docs/benchmarks.json`` (every number)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import Figure, Row, fmt

RATIO_NOTE = ("**Ratio** = ctxeval relative to the reference, oriented so that higher is better for ctxeval: "
              "1.0 = as good as the reference (for a limit: at the limit), 0.5 = half the throughput or twice "
              "the time or memory, above 1 = better than the reference. Ratios under 0.9 are in bold.")


def figure_text(f: Figure | None) -> str:
    if f is None:
        return ""
    text = fmt(f.value, f.unit)
    if f.detail:
        text += f" ({f.detail})"
    return f"{text}<br>{f.label}"


def ratio_text(row: Row) -> str:
    r = row.ratio
    if r is None:
        return "–"
    text = f"{r:.2f}" if r < 10 else f"{r:.1f}"
    return f"**{text}**" if r < 0.9 else text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def machine_line(m: dict[str, Any]) -> str:
    load = " ".join(str(x) for x in m.get("load_avg", []))
    return (f"{m['cores']} cores ({m['usable_cores']} usable), {m['memory_gib']} GiB memory, {m['cpu']}, "
            f"Python {m['python']}, {m['platform']}; load average at start {load}")


def markdown(rows: list[Row], *, machine: dict[str, Any], mode: str, started: datetime, wall_s: float,
             only: list[str] | None = None) -> str:
    command = {"quick": "make bench-quick", "full": "make bench"}.get(mode, f"python -m bench.run --{mode}")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{command}` ({mode} sizes{', only ' + ', '.join(only) if only else ''}) on "
        f"{started.strftime('%Y-%m-%d %H:%M UTC')}, commit `{machine.get('commit') or '?'}`, in "
        f"{wall_s / 60:.1f} min. What each row measures and how to read it: "
        "[benchmarking.md](benchmarking.md). Every repetition's numbers: `benchmarks.json`.",
        "",
        f"Machine: {machine_line(machine)}.",
        "",
        RATIO_NOTE,
        "",
        "| What | ctxeval | Reference | Ratio | Conditions |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        if row.skipped:
            lines.append(f"| {_cell(row.what)} | {_cell(row.skipped)} | | – | {_cell(row.conditions)} |")
        else:
            lines.append(f"| {_cell(row.what)} | {_cell(figure_text(row.ctxeval))} | "
                         f"{_cell(figure_text(row.reference))} | {ratio_text(row)} | {_cell(row.conditions)} |")
    return "\n".join(lines) + "\n"


def plain_table(rows: list[Row]) -> str:
    """The table for a terminal."""
    out = []
    for row in rows:
        if row.skipped:
            out.append(f"{row.what}\n    {row.skipped}")
            continue
        a, b = row.ctxeval, row.reference
        out.append(f"{row.what}\n    ctxeval {fmt(a.value if a else None, a.unit if a else '')}"
                   f"{' (' + a.detail + ')' if a and a.detail else ''}   reference "
                   f"{fmt(b.value if b else None, b.unit if b else '')}"
                   f"{' (' + b.detail + ')' if b and b.detail else ''}   ratio {ratio_text(row).strip('*')}")
    return "\n".join(out)


def write(rows: list[Row], out: Path, json_out: Path, *, machine: dict[str, Any], mode: str, sizes: dict[str, Any],
          started: datetime, wall_s: float, timings: dict[str, Any], only: list[str] | None = None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(rows, machine=machine, mode=mode, started=started, wall_s=wall_s, only=only),
                   encoding="utf-8")
    data = {"generated": started.astimezone(UTC).isoformat(timespec="seconds"), "mode": mode, "only": only,
            "wall_s": wall_s, "machine": machine, "sizes": sizes, "benchmarks": timings,
            "rows": [r.as_dict() for r in rows]}
    json_out.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
