"""recipes/paper_tables.py: seeds averaged per row, the paper's figure beside ours, speeds."""

import importlib.util
import json
import statistics
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_recipe():
    spec = importlib.util.spec_from_file_location("paper_tables", ROOT / "recipes/paper_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table(metrics: dict[str, float], speeds: dict[str, float]) -> dict:
    return {
        "energy": "runs/pos/model-best",
        "batch_size": 10,
        "environment": {"torch_threads": 1},
        "rows": [
            {"method": m, "metric": v, "speed": {"examples_per_s": speeds[m]}}
            for m, v in metrics.items()
        ],
    }


def test_seeds_are_averaged_and_the_paper_figure_is_beside(tmp_path):
    recipe = load_recipe()
    seeds = [tmp_path / "s0", tmp_path / "s1", tmp_path / "s2"]
    infnet = [85.0, 86.0, 87.5]
    for d, value in zip(seeds, infnet):
        d.mkdir()
        rows = {"Viterbi": 88.0, "CNN {1,3} infnet": value}
        (d / "table4_pos.json").write_text(
            json.dumps(table(rows, {"Viterbi": 100.0, "CNN {1,3} infnet": 700.0}))
        )
    found = recipe.collect(seeds)
    assert found[("table4", "pos")]["rows"]["CNN {1,3} infnet"] == infnet
    text = recipe.markdown(found)
    mean, sd = statistics.mean(infnet), statistics.stdev(infnet)
    assert f"| CNN {{1,3}} infnet | {mean:.2f} ± {sd:.2f} (3 seeds) | 91.3 |" in text
    assert "| Viterbi | 88.00 (one energy) | 90.9 |" in text
    assert "| CNN {1,3} infnet | 700 | 7.0 |" in text  # Table 3 layout: examples/s, × Viterbi


def test_no_table_files_is_a_clear_error(tmp_path):
    recipe = load_recipe()
    from spacy_infnet.cli._util import UserError

    with pytest.raises(UserError, match=r"paper_tables: no table\*_<task>\.json in"):
        recipe.main(results=tmp_path, seeds=str(tmp_path))
