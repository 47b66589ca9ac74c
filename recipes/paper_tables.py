"""The paper's Tables 1, 3, 4 and 5 from the rows that ``recipes/table1.py`` wrote, with the
paper's figure beside ours wherever we have it.

    python recipes/paper_tables.py --results results --seeds results,results/seed1,results/seed2

Reads ``TABLE_TASK.json`` (TABLE: table1, table4, table5; TASK: pos, ner, ccg) from every
directory of ``--seeds`` (one stage-2 seed each, all on the same energies) and writes
``paper_tables.{md,json}`` to ``--results``: accuracy / F1 as mean ± sd over the seeds that have
the row (the count is shown; a single value is a single seed), and Table 3's layout: examples/s
of each method through ``nlp.pipe`` at the tables' batch size (10), one torch thread, from the
first seed's files (each table's JSON records its batch size and threads).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Annotated

import typer

from spacy_infnet.cli import _util as cli

ROOT = Path(__file__).resolve().parent.parent
TASKS = {
    "pos": "Twitter POS, DAILY547 acc.",
    "ner": "CoNLL-2003 testb F1",
    "ccg": "EWT-CCG test acc.",
}
TABLES = {
    "table1": "Table 1: BLSTM-CRF energy, plain inference networks and local baselines",
    "table4": "Table 4: BLSTM-CRF+ energy, infnet+ and local baseline+",
    "table5": "Table 5: NER, BLSTM infnet+ with λ annealed as λ·e^(−0.01·epoch)",
}
#: The paper's figures that this repository can cite: those stated in the issue that asked for
#: these tables (the paper's PDF is not reachable from this project's machines). (table, task,
#: method) -> figure.  Every other cell reads "n/a".
PAPER = {
    ("table4", "pos", "Viterbi"): 90.9,
    ("table4", "pos", "CNN {1,3} infnet"): 91.3,
    ("table4", "ner", "Viterbi"): 91.6,
}


def read_rows(directory: Path, table: str, task: str) -> dict | None:
    path = directory / f"{table}_{task}.json"
    return json.loads(path.read_text()) if path.exists() else None


def cell(values: list[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.2f} (1 seed)"
    if len(set(values)) == 1:  # Viterbi: the one energy that every stage-2 seed shares
        return f"{values[0]:.2f} (one energy)"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f} ({len(values)} seeds)"


def collect(seed_dirs: list[Path]) -> dict:
    """{(table, task): {"rows": {method: [metric per seed]}, "first": first seed's table}}."""
    found: dict = {}
    for table in TABLES:
        for task in TASKS:
            per_method: dict[str, list[float]] = {}
            first = None
            for directory in seed_dirs:
                data = read_rows(directory, table, task)
                if data is None:
                    continue
                first = first or data
                for row in data["rows"]:
                    per_method.setdefault(row["method"], []).append(row["metric"])
            if first is not None:
                found[(table, task)] = {"rows": per_method, "first": first}
    return found


def markdown(found: dict) -> str:
    lines: list[str] = []
    for table, caption in TABLES.items():
        tasks = [t for t in TASKS if (table, t) in found]
        if not tasks:
            continue
        lines += [f"### {caption}", ""]
        lines.append("| method | " + " | ".join(f"{TASKS[t]} | paper" for t in tasks) + " |")
        lines.append("|---|" + "---:|---:|" * len(tasks))
        methods: list[str] = []
        for t in tasks:
            methods += [m for m in found[(table, t)]["rows"] if m not in methods]
        for m in methods:
            cells = []
            for t in tasks:
                cells.append(cell(found[(table, t)]["rows"].get(m, [])))
                paper = PAPER.get((table, t, m))
                cells.append("n/a" if paper is None else f"{paper:.1f}")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        energies = ", ".join(f"{t}: `{found[(table, t)]['first']['energy']}`" for t in tasks)
        lines += ["", f"Energies: {energies}.", ""]
    lines += ["### Table 3 layout: examples/s (nlp.pipe, CPU)", ""]
    speed_tasks = [t for t in TASKS if ("table4", t) in found]
    if speed_tasks:
        lines.append("| method | " + " | ".join(f"{t} | × Viterbi" for t in speed_tasks) + " |")
        lines.append("|---|" + "---:|---:|" * len(speed_tasks))
        rows: dict[str, dict[str, tuple[float, float]]] = {}
        for t in speed_tasks:
            data = found[("table4", t)]["first"]
            vit = data["rows"][0]["speed"]["examples_per_s"]
            for r in data["rows"]:
                eps = r["speed"]["examples_per_s"]
                rows.setdefault(r["method"], {})[t] = (eps, eps / vit)
        for m, per in rows.items():
            cells = []
            for t in speed_tasks:
                eps, ratio = per.get(t, (None, None))
                cells += ["—", "—"] if eps is None else [f"{eps:,.0f}", f"{ratio:.1f}"]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        env = [found[("table4", t)]["first"] for t in speed_tasks]
        lines += [
            "",
            "Batch sizes: "
            + ", ".join(f"{t} {e['batch_size']}" for t, e in zip(speed_tasks, env))
            + "; torch threads: "
            + ", ".join(
                f"{t} {e['environment']['torch_threads']}" for t, e in zip(speed_tasks, env)
            )
            + ".",
        ]
    return "\n".join(lines) + "\n"


@cli.user_errors("paper_tables")
def main(
    results: Annotated[Path, cli.Opt(help="where paper_tables.{md,json} go")] = ROOT / "results",
    seeds: Annotated[
        str, cli.Opt(help="comma-separated directories of table*_<task>.json, one per seed")
    ] = "results",
) -> None:
    """Tables 1, 3, 4 and 5 beside the paper's figures, over the seeds given."""
    seed_dirs = [Path(d) for d in cli.parse_names(seeds)]
    for d in seed_dirs:
        if not d.is_dir():
            raise ValueError(f"--seeds: {d} is not a directory")
    found = collect(seed_dirs)
    if not found:
        raise ValueError(f"no table*_<task>.json in {', '.join(map(str, seed_dirs))}")
    text = markdown(found)
    payload = {f"{table}_{task}": v["rows"] for (table, task), v in found.items()}
    cli.write_table(results / "paper_tables", payload, text)
    typer.echo(text)


if __name__ == "__main__":
    cli.run_script(main, "paper_tables")
