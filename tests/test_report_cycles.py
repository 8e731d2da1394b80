"""The talk's per-cycle bars and curves against cycles, from synthetic records."""

import json

import numpy as np
import pytest

from bal.cli import main
from bal.report.cycles import cycle_table, format_cycle_table, plot_cycle_bars


def records():
    rng = np.random.default_rng(0)
    out = []
    for strategy in ("entropy", "random"):
        for seed in (0, 1, 2):
            for cycle in range(7 if seed else 5):  # seed 0 stops after cycle 4
                out.append({"task": "classification", "strategy": strategy, "seed": seed, "cycle": cycle,
                            "num_labels": 20 + 10 * cycle, "accuracy": float(rng.uniform()), "acquired": []})
    return out


def write(tmp_path, recs):
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return tmp_path


def test_cycle_table_is_the_mean_and_population_std_over_seeds():
    recs = records()
    rows = cycle_table(recs, (1, 2, 4))
    assert [(r["strategy"], r["cycle"]) for r in rows] == [(s, c) for s in ("entropy", "random") for c in (1, 2, 4)]
    for row in rows:
        values = [r["accuracy"] for r in recs if r["strategy"] == row["strategy"] and r["cycle"] == row["cycle"]]
        assert row["mean"] == pytest.approx(np.mean(values)) and row["std"] == pytest.approx(np.std(values))
        assert len(row["values"]) == 3 and row["labels"] == 20 + 10 * row["cycle"]
    assert "entropy" in format_cycle_table(rows) and "± " in format_cycle_table(rows)


def test_a_cycle_not_every_seed_reached_is_refused():
    with pytest.raises(ValueError, match=r"cycle\(s\) \[6\]"):
        cycle_table(records(), (1, 6))  # seed 0 ended at cycle 4
    with pytest.raises(ValueError, match="integers >= 0"):
        cycle_table(records(), (-1,))


def test_plots_write_pngs(tmp_path, capsys):
    run_dir = write(tmp_path, records())
    path = plot_cycle_bars(run_dir, (1, 2, 4))
    assert path == run_dir / "cycle_bars.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", str(run_dir), "--x", "cycle", "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 1000 and str(tmp_path / "c.png") in capsys.readouterr().out
    assert main(["plot", str(run_dir), "--cycles", "1", "9"]) == 2
    assert "cycle(s) [9]" in capsys.readouterr().err


def test_least_informative_runs_in_another_directory_join_the_figure(tmp_path, capsys):
    """The talk's most / least uncertain / random figure from two run directories: the runs of a
    most_informative = false config are named least_<strategy>; a run given twice is refused."""
    from bal.active.config import ExperimentConfig
    from bal.active.results import RunDirectory
    from bal.report.records import read_sources

    most, least = tmp_path / "most", tmp_path / "least"
    for path, informative, strategies in ((most, True, ("entropy", "random")), (least, False, ("entropy",))):
        path.mkdir()
        RunDirectory(path).prepare(ExperimentConfig(strategies=("entropy",), most_informative=informative),
                                   resume=False, overwrite=False)
        write(path, [r for r in records() if r["strategy"] in strategies])
    recs, first = read_sources([most, least])
    assert first == most and {r["strategy"] for r in recs} == {"entropy", "random", "least_entropy"}
    assert sum(r["strategy"] == "least_entropy" for r in recs) == sum(r["strategy"] == "entropy" for r in recs)
    rows = cycle_table(recs, (1, 2))
    assert {r["strategy"] for r in rows} == {"entropy", "least_entropy", "random"}
    assert main(["plot", str(most), str(least), "--cycles", "1", "2"]) == 0
    assert capsys.readouterr().out.strip() == str(most / "cycle_bars.png")
    assert main(["plot", str(most), str(least), "--out", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["summary", str(most), str(least)]) == 0
    assert "least_entropy" in capsys.readouterr().out
    assert main(["summary", str(most), str(least), "--write"]) == 2
    assert "give one RUN_DIR" in capsys.readouterr().err
    assert main(["plot", str(most), str(most)]) == 2
    err = capsys.readouterr().err
    assert "given twice" in err and len(err.strip().splitlines()) == 1
    # one study at two settings (the growth study): shared names carry their directory
    other = tmp_path / "growth_33pct"
    other.mkdir()
    write(other, [r for r in records() if r["strategy"] == "random"])
    names = {r["strategy"] for r in read_sources([most, other])[0]}
    assert names == {"entropy", "random @most", "random @growth_33pct"}
    assert main(["plot", str(most), str(other), "--x", "cycle", "--out", str(tmp_path / "g.png")]) == 0
    # a single directory keeps its own names, whatever its config
    assert {r["strategy"] for r in read_sources(least)[0]} == {"entropy"}


@pytest.mark.parametrize("task, metric, count, unit", [("detection", "map", "num_labeled_images", "images"),
                                                       ("segmentation", "mean_iou", "num_labeled_pixels", "pixels")])
def test_cycle_bars_of_every_task_use_its_metric_and_label_unit(tmp_path, capsys, task, metric, count, unit):
    recs = [{"task": task, "strategy": s, "seed": seed, "cycle": c, count: 100 * (c + 1),
             "num_labeled_boxes": 7 * (c + 1), metric: 0.1 * c + 0.01 * seed + (0.05 if s != "random" else 0)}
            for s in ("bald", "random") for seed in (0, 1) for c in range(3)]
    rows = cycle_table(recs, (1, 2))
    assert {r["metric"] for r in rows} == {metric} and {r["unit"] for r in rows} == {unit}
    assert [r["labels"] for r in rows if r["strategy"] == "bald"] == [200, 300]
    table = format_cycle_table(rows)
    assert f"{metric} after cycle" in table and f"(300 {unit}, 2 seeds)" in table and "None" not in table
    run_dir = write(tmp_path, recs)
    assert main(["plot", str(run_dir), "--cycles", "1", "2"]) == 0  # no --metric: the task's own
    assert capsys.readouterr().out.strip() == str(run_dir / "cycle_bars.png")


def test_plot_of_a_key_the_records_lack_names_the_keys_they_have(tmp_path, capsys):
    recs = [{"task": "segmentation", "strategy": "bald", "seed": 0, "cycle": c, "num_labeled_pixels": 100 * (c + 1),
             "mean_iou": 0.1 * c} for c in range(3)]
    run_dir = write(tmp_path, recs)
    assert main(["plot", str(run_dir), "--x", "num_labels"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--x 'num_labels' is not in every record; these are: cycle, mean_iou, num_labeled_pixels" in err
    assert len(err.splitlines()) == 1
    assert main(["plot", str(run_dir), "--metric", "accuracy"]) == 2
    assert "metric 'accuracy' is not in every record" in capsys.readouterr().err
