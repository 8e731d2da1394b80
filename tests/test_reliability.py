"""Bad input, through the API and the CLI: always one line that names the setting or file.

Never a traceback, never a silent acceptance, never a half-written run
directory. The config cases are generated from the dataclass fields (every
setting of every task gets wrong types, non-finite numbers and out-of-range
values); the CLI cases cover files, directories and resumed runs.
"""

import dataclasses
import json
import math
import pathlib
import signal
import subprocess
import sys
import time
import typing

import numpy as np
import pytest

from bal import cli
from bal.active.config import ExperimentConfig
from bal.active.segmentation.config import SegmentationConfig

CONFIG_CLASSES = (ExperimentConfig, SegmentationConfig)


def _bad_values(hint):
    """Values of the wrong type (or non-finite) for a field of type ``hint``."""
    optional = type(None) in typing.get_args(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if optional else hint
    origin = typing.get_origin(base)
    if base is bool:
        return ["yes", 1, 0.0] + ([] if optional else [None])
    if base is int:
        return [2.5, "3", True, [1]] + ([] if optional else [None])
    if base is float:
        return ["abc", math.nan, math.inf, -math.inf, True] + ([] if optional else [None])
    if base is str:
        return [3, "", ["x"]] + ([] if optional else [None])
    if base is dict:
        return ["x", [1], 2]
    if origin is tuple:
        inner = typing.get_args(base)[0]
        wrong = {int: [1.7, True, "1"], float: ["a", math.nan], str: [3, ""]}[inner]
        return ["bald" if inner is str else 0, 5] + [[w] for w in wrong]
    raise AssertionError(f"no bad values for {hint}")


def _type_cases():
    for cls in CONFIG_CLASSES:
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if field.name == "task":
                continue
            for value in _bad_values(hints[field.name]):
                yield pytest.param(cls, {field.name: value}, field.name,
                                   id=f"{cls.TASK}-{field.name}={value!r}")


RANGE_CASES = [
    ({"cycles": -1}, "cycles"), ({"seeds": [-1]}, "seeds"), ({"seeds": [2 ** 64]}, "seeds"),
    ({"seeds": []}, "seeds"), ({"seeds": [1, 1]}, "seeds"), ({"num_members": 0}, "num_members"),
    ({"acquisition_size": 0}, "acquisition_size"), ({"learning_rate": -1}, "learning_rate"),
    ({"learning_rate": 0}, "learning_rate"), ({"weight_decay": -1}, "weight_decay"),
    ({"growth": 0.0, "acquisition_size": None}, "growth"), ({"initial_labels": 0}, "initial_labels"),
    ({"pool_subset": 0}, "pool_subset"), ({"repeat": 0}, "repeat"), ({"epochs": 0}, "epochs"),
    ({"batch_size": 0}, "batch_size"), ({"num_samples": 0}, "num_samples"), ({"chunk_size": 0}, "chunk_size"),
    ({"min_steps": -1}, "min_steps"), ({"validation_size": -1}, "validation_size"),
    ({"train_samples": 0}, "train_samples"), ({"patience": 3}, "patience"),
    ({"target_accuracy": 1.5}, "target_accuracy"), ({"target_accuracy": 0.0}, "target_accuracy"),
    ({"kl_weight": -1}, "kl_weight"), ({"label_budget": 10}, "label_budget"),
    ({"acquisition_size": 10, "growth": 0.1}, "growth"), ({"strategies": []}, "strategies"),
    ({"strategies": ["bald", "bald"]}, "strategies"), ({"repeat_noise": -0.1}, "repeat_noise"),
    ({"regularization": -1}, "regularization"), ({"weight_decay_per_example": -3.5}, "weight_decay_per_example"),
    ({"kl_anneal_steps": -1}, "kl_anneal_steps"), ({"acquisition_params": {"bald": 3}}, "acquisition_params"),
    ({"cycles": None, "label_budget": None}, "cycles"), ({"task": "segmentation"}, "task"),
    ({"unknown_setting": 1}, "unknown_setting"),
]

SEGMENTATION_RANGE_CASES = [
    ({"q": 1.5}, "q"), ({"target_strength": -0.1}, "target_strength"), ({"grid_rows": 0}, "grid"),
    ({"grid_rows": 100}, "grid"), ({"image_size": [48]}, "image_size"), ({"strategies": ["nope"]}, "strategy"),
    ({"strategies": ["bald_targeted"]}, "target_classes"), ({"reduction": "median"}, "reduction"),
    ({"acquisition_images": None}, "acquisition_pixels"), ({"acquisition_images": -2.0}, "acquisition_images"),
    ({"num_train": 0}, "num_train"), ({"initial_images": 1000}, "initial_images"),
    ({"dataset": "cityscapes_nope"}, "dataset"), ({"class_weights": [-1.0]}, "class_weights"),
    ({"cycles": 1000}, "cycles"), ({"task": "classification"}, "task"),
]


def _one_line_naming(message: str, name: str):
    assert "\n" not in message.strip(), message
    assert name in message, f"{message!r} does not name {name!r}"


@pytest.mark.parametrize("cls, settings, name", list(_type_cases()))
def test_wrong_types_are_refused_naming_the_setting(cls, settings, name):
    with pytest.raises(ValueError) as err:
        cls.from_dict(settings)
    _one_line_naming(str(err.value), name)


@pytest.mark.parametrize("settings, name", RANGE_CASES, ids=lambda v: repr(v)[:40])
def test_out_of_range_classification_settings(settings, name):
    with pytest.raises(ValueError) as err:
        ExperimentConfig.from_dict(settings)
    _one_line_naming(str(err.value), name)


@pytest.mark.parametrize("settings, name", SEGMENTATION_RANGE_CASES, ids=lambda v: repr(v)[:40])
def test_out_of_range_segmentation_settings(settings, name):
    with pytest.raises(ValueError) as err:
        SegmentationConfig.from_dict(settings)
    _one_line_naming(str(err.value), name)


def test_unknown_task_and_non_table_configs():
    from bal.active.config import config_from_dict

    for bad, name in [({"task": "nope"}, "task"), ({"task": 3}, "task"), ([1, 2], "table"), ("x", "table")]:
        with pytest.raises(ValueError) as err:
            config_from_dict(bad)
        _one_line_naming(str(err.value), name)


def test_growth_works_from_toml_and_flags(tmp_path):
    from bal.active.config import config_from_dict, load_config

    (tmp_path / "g.toml").write_text('dataset = "digits"\ngrowth = 0.5\nlabel_budget = 40\n')
    config = config_from_dict(load_config(tmp_path / "g.toml"))
    assert config.growth == 0.5 and config.acquisition_size is None and config.cycles is None
    assert [config.acquisition_count(n) for n in (20, 30)] == [10, 10]


# -- the CLI, in process: exit status 2, one line on stderr naming the setting or file ------------

FAST = ["--dataset", "digits", "--model", "mlp", "--epochs", "1", "--cycles", "1", "--seeds", "0",
        "--strategies", "bald", "--num-samples", "2", "--quiet"]


def _cli_error(capsys, argv, name):
    code = cli.main(argv) if argv[0] != "--help" else None
    captured = capsys.readouterr()
    assert code == 2, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bal "), captured.err
    assert "Traceback" not in captured.err
    assert name in lines[0], f"{lines[0]!r} does not name {name!r}"
    return lines[0]


def _parse_error(capsys, argv, name):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    captured = capsys.readouterr()
    assert exit_.value.code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], captured.err


FLAG_CASES = [
    (["--cycles", "2.5"], "--cycles"), (["--cycles", "x"], "--cycles"), (["--seeds", "a"], "--seeds"),
    (["--growth", "abc"], "--growth"), (["--model-kwargs", "[1]"], "--model-kwargs"),
    (["--model-kwargs", "{bad"], "--model-kwargs"), (["--seeds"], "--seeds"), (["--nope", "1"], "--nope"),
    (["--learning-rate", "fast"], "--learning-rate"),
]


@pytest.mark.parametrize("flags, name", FLAG_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_bad_flags(capsys, tmp_path, flags, name):
    _parse_error(capsys, ["run", "--out", str(tmp_path / "r"), *FAST, *flags], name)


SETTING_FLAG_CASES = [
    (["--learning-rate", "nan"], "learning_rate"), (["--learning-rate", "-1"], "learning_rate"),
    (["--growth", "inf"], "growth"), (["--num-members", "0"], "num_members"),
    (["--acquisition-size", "0"], "acquisition_size"), (["--seeds", "-3"], "seeds"),
    (["--acquisition-params", '{"bald": 3}'], "acquisition_params"),
    (["--target-accuracy", "2"], "target_accuracy"), (["--weight-decay", "-1"], "weight_decay"),
    (["--model", "nope"], "nope"), (["--posterior", "nope"], "nope"), (["--estimator", "nope"], "nope"),
    (["--strategies", "nope"], "nope"), (["--dataset", "nope"], "nope"),
    (["--acquisition-params", '{"powerbald": {"coldness": "abc"}}', "--strategies", "powerbald"], "coldness"),
    (["--acquisition-params", '{"bald": {"nope": 1}}'], "nope"),
    (["--initial-labels", "15"], "initial_labels"), (["--initial-labels", "50000"], "initial_labels"),
    (["--task", "nope"], "task"), (["--num-train", "5"], "num_train"),
    (["--acquisition-size", "5000"], "acquisition size"),
    # a model that cannot be built fails before config.json is written (its options are checked when traced)
    (["--model-kwargs", '{"dropout_rate": 2}'], "dropout_rate"),
    (["--posterior", "variational", "--model-kwargs", '{"logvar_init": "x"}'], "model_kwargs"),
    (["--model", "lenet5"], "model"),  # 8 x 8 digits are too small for LeNet-5's pooling
    (["--thresholds", "2"], "thresholds"), (["--thresholds", "nan"], "thresholds"),
]


@pytest.mark.parametrize("flags, name", SETTING_FLAG_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_bad_settings_leave_no_run_directory_behind(capsys, tmp_path, flags, name):
    out = tmp_path / "r"
    _cli_error(capsys, ["run", "--out", str(out), *FAST, *flags], name)
    assert not (out / "config.json").exists(), "a bad setting must not write config.json"


def test_a_flag_of_none_unsets_what_the_config_file_set(tmp_path):
    """``--pool-subset none`` is not ignored; ``--growth 0.5 --acquisition-size none`` replaces a
    file's fixed acquisition size; a list setting given as ``none`` becomes empty."""
    import json

    toml = _write(tmp_path / "c.toml", 'dataset = "digits"\nmodel = "mlp"\nepochs = 1\nseeds = [0]\ncycles = 0\n'
                  'pool_subset = 50\nacquisition_size = 10\nstop_on = ["kappa"]\nstop_set_size = 20\nquiet = true\n')
    out = tmp_path / "r"
    assert cli.main(["run", str(toml), "--out", str(out), "--pool-subset", "none", "--growth", "0.5",
                     "--acquisition-size", "none", "--stop-on", "none", "--no-quiet"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["pool_subset"] is None and saved["growth"] == 0.5 and saved["acquisition_size"] is None
    assert saved["stop_on"] == [] and saved["quiet"] is False and saved["stop_set_size"] == 20  # the rest: the file's


def test_list_model_options_from_toml_and_flags(tmp_path):
    """TOML and JSON give lists; the model gets tuples (a Flax module must hash)."""
    assert cli.main(["run", "--out", str(tmp_path / "r"), *FAST, "--cycles", "0", "--model-kwargs",
                     '{"hidden_sizes": [16]}']) == 0
    assert (tmp_path / "r" / "results.jsonl").exists()


def test_corrupt_pool_labels_name_the_file(capsys, tmp_path):
    pool = tmp_path / "pool"
    assert cli.main(["pool", "pack", "digits", str(pool)]) == 0
    capsys.readouterr()
    # a bad test split is refused before anything is written
    _cli_error(capsys, ["pool", "pack", "digits", str(tmp_path / "p2"), "--test-split", "nope"], "nope")
    assert not (tmp_path / "p2").exists() or not any((tmp_path / "p2").iterdir())
    for bad in (b"", (pool / "labels.npy").read_bytes()[:100]):
        (pool / "labels.npy").write_bytes(bad)
        _cli_error(capsys, ["run", "--out", str(tmp_path / "r"), *FAST, "--dataset", f"pool:{pool}"], "labels.npy")


def _write(path: pathlib.Path, text: str) -> pathlib.Path:
    path.write_text(text)
    return path


def test_config_file_errors(capsys, tmp_path):
    cases = [
        (tmp_path / "missing.toml", "missing.toml"),
        (_write(tmp_path / "c.yaml", "a: 1"), "c.yaml"),
        (_write(tmp_path / "bad.toml", "cycles = = 2"), "bad.toml"),
        (_write(tmp_path / "list.json", "[1, 2]"), "list.json"),
        (_write(tmp_path / "str.json", '"x"'), "str.json"),
        (_write(tmp_path / "bad.json", "{nope"), "bad.json"),
        (_write(tmp_path / "unknown.toml", 'dataset = "digits"\nfoo = 1\n'), "foo"),
        (_write(tmp_path / "type.toml", 'dataset = "digits"\ncycles = "3"\n'), "cycles"),
        (_write(tmp_path / "bool.toml", 'dataset = "digits"\ninclude_random = "yes"\n'), "include_random"),
        (_write(tmp_path / "strat.toml", 'dataset = "digits"\nstrategies = "bald"\n'), "strategies"),
        (_write(tmp_path / "nan.json", '{"dataset": "digits", "growth": NaN}'), "growth"),
        (_write(tmp_path / "inf.json", '{"dataset": "digits", "learning_rate": Infinity}'), "learning_rate"),
        (_write(tmp_path / "big.json", '{"dataset": "digits", "seeds": [18446744073709551616]}'), "seeds"),
    ]
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00bad")
    cases.append((tmp_path / "binary.toml", "binary.toml"))
    for path, name in cases:
        _cli_error(capsys, ["run", str(path), "--out", str(tmp_path / "r"), "--quiet"], name)
    assert not (tmp_path / "r" / "config.json").exists()


def test_directory_errors(capsys, tmp_path):
    a_file = _write(tmp_path / "file.txt", "x")
    _cli_error(capsys, ["run", "--out", str(a_file / "sub"), *FAST], "file.txt")
    _cli_error(capsys, ["run", "--out", str(tmp_path / "r"), *FAST, "--data-dir", str(a_file)], "file.txt")
    _cli_error(capsys, ["run", "--out", str(tmp_path / "r"), *FAST, "--resume", "--overwrite"], "--resume")
    _cli_error(capsys, ["summary", str(tmp_path / "nowhere")], "nowhere")
    _cli_error(capsys, ["plot", str(tmp_path / "nowhere")], "nowhere")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("done") / "run"
    assert cli.main(["run", "--out", str(out), *FAST]) == 0
    return out


def _copy_run(src: pathlib.Path, dst: pathlib.Path) -> pathlib.Path:
    dst.mkdir(parents=True)
    for name in ("config.json", "results.jsonl"):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_resumed_run_directory_errors(capsys, tmp_path, finished_run):
    lines = (finished_run / "results.jsonl").read_text().splitlines()
    first = json.loads(lines[0])

    def broken(name, **files):
        run = _copy_run(finished_run, tmp_path / name)
        for file, text in files.items():
            (run / file).write_bytes(text if isinstance(text, bytes) else text.encode())
        return run

    cases = [
        (broken("cfg", **{"config.json": "{not json"}), "config.json"),
        (broken("cfglist", **{"config.json": "[1]"}), "config.json"),
        (broken("cfgbad", **{"config.json": json.dumps({"cycles": "x"})}), "config.json"),
        (broken("nul", **{"results.jsonl": "\x00\x00\x00\n"}), "results.jsonl:1"),
        (broken("garbage", **{"results.jsonl": lines[0] + "\n{oops\n"}), "results.jsonl:2"),
        (broken("type", **{"results.jsonl": json.dumps({**first, "seed": "0"}) + "\n"}), "results.jsonl:1"),
        (broken("neg", **{"results.jsonl": json.dumps({**first, "acquired": [-5]}) + "\n"}), "results.jsonl:1"),
        (broken("range", **{"results.jsonl": json.dumps({**first, "acquired": [10 ** 9], "final": False}) + "\n"}),
         "results.jsonl"),
        (broken("list", **{"results.jsonl": "[1, 2]\n"}), "results.jsonl:1"),
    ]
    for run, name in cases:
        _cli_error(capsys, ["run", "--out", str(run), *FAST, "--resume"], name)
        if "results.jsonl:" in name:  # a corrupt record stops summaries too (not a range error: no replay)
            _cli_error(capsys, ["summary", str(run)], name)
    other = _copy_run(finished_run, tmp_path / "other")
    _cli_error(capsys, ["run", "--out", str(other), *FAST, "--cycles", "2", "--resume"], "cycles")
    _cli_error(capsys, ["run", "--out", str(other), *FAST], "--resume")
    _cli_error(capsys, ["summary", str(finished_run), "--metric", "nope"], "nope")
    _cli_error(capsys, ["summary", str(finished_run), "--thresholds", "90"], "90")


def test_plot_prints_the_file_it_wrote(capsys, tmp_path, finished_run):
    target = tmp_path / "plots" / "curves.png"
    assert cli.main(["plot", str(finished_run), "--out", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target) and target.exists()


# -- fit / predict at the API edge ------------------------------------------------------------------

def test_fit_and_predict_refuse_bad_arrays():
    import jax

    from bal import posteriors
    from bal.predict import predict
    from bal.train import fit

    post = posteriors.build("mc_dropout", "mlp", 3, model_kwargs={"hidden_sizes": (8,)})
    v = post.init(jax.random.key(0), np.zeros((1, 6), np.float32))
    y = np.zeros(4, np.int32)
    bad_inputs = [
        (np.full((4, 6), np.nan, np.float32), "NaN"), (np.full((4, 6), np.inf, np.float32), "NaN or infinite"),
        (np.zeros((4, 7), np.float32), "shape"), (np.zeros((4, 6), np.uint8), "floating"),
        (np.zeros(4, np.float32), "shape"),
    ]
    for x, name in bad_inputs:
        for call in (lambda: fit(post, v, x, y, jax.random.key(0), num_epochs=1),
                     lambda: predict(post, v, x, jax.random.key(0))):
            with pytest.raises(ValueError) as err:
                call()
            _one_line_naming(str(err.value), name)
    x = np.zeros((4, 6), np.float32)
    for kwargs, name in [({"num_epochs": True}, "num_epochs"), ({"num_epochs": 1, "batch_size": 0}, "batch_size"),
                         ({"num_epochs": 1, "l2": -1.0}, "l2"), ({"num_epochs": 1, "monitor": "f1"}, "monitor"),
                         ({"num_epochs": 1, "patience": 2}, "patience"), ({}, "num_epochs")]:
        with pytest.raises(ValueError) as err:
            fit(post, v, x, y, jax.random.key(0), **kwargs)
        _one_line_naming(str(err.value), name)
    for labels, name in [(np.full(4, 3), "[0, 3)"), (np.zeros(5, int), "shape"), (np.zeros(4, float), "integers")]:
        with pytest.raises(ValueError) as err:
            fit(post, v, x, labels, jax.random.key(0), num_epochs=1)
        _one_line_naming(str(err.value), name)
    with pytest.raises(ValueError, match="chunk_size"):
        predict(post, v, x, jax.random.key(0), chunk_size=0)


# -- real processes: the writer lock and Ctrl-C ----------------------------------------------------

SLOW = ["--dataset", "digits", "--model", "mlp", "--epochs", "200", "--cycles", "30", "--seeds", "0", "1",
        "--strategies", "bald", "--num-samples", "2", "--quiet"]


def _bal(*args):
    return [sys.executable, "-m", "bal.cli", *args]


def _wait_for(path: pathlib.Path, timeout: float = 120.0):
    t0 = time.monotonic()
    while not path.exists() or path.stat().st_size == 0:
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{path} did not appear in {timeout} s")
        time.sleep(0.2)


def test_one_writer_per_run_directory(tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen(_bal("run", "--out", str(out), *SLOW), stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(out / "config.json")
        for extra in (["--resume"], ["--overwrite"], []):
            res = subprocess.run(_bal("run", "--out", str(out), *SLOW, *extra), capture_output=True, text=True,
                                 timeout=120)
            assert res.returncode == 2, res.stderr
            assert "in use by another bal run" in res.stderr and str(first.pid) in res.stderr
            assert len(res.stderr.strip().splitlines()) == 1
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # kill -9 leaves no stale lock: the directory can be taken at once
    from bal.active.results import RunDirectory

    with RunDirectory(out).lock():
        pass


def _wait_records(path: pathlib.Path, count: int, proc, timeout: float = 300.0):
    t0 = time.monotonic()
    while not path.exists() or path.read_bytes().count(b"\n") < count:
        if proc.poll() is not None or time.monotonic() - t0 > timeout:
            raise AssertionError(f"{path} did not reach {count} records")
        time.sleep(0.05)


#: six moments of a run (the issue measured SIGSEGV in 3 to 4 of 6): imports, the config just written,
#: the first compile, the first record (acquisition scoring starts), mid-scoring, a later cycle's training
MOMENTS = {"imports": (None, 1.0), "config": (0, 0.0), "compile": (0, 2.0), "record": (1, 0.0),
           "scoring": (1, 0.4), "later": (2, 0.3)}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_ctrl_c_exits_130_without_crashing(tmp_path, moment):
    out = tmp_path / "run"
    records, delay = MOMENTS[moment]
    proc = subprocess.Popen(_bal("run", "--out", str(out), *SLOW), stderr=subprocess.PIPE, text=True)
    if records == 0:
        _wait_for(out / "config.json")
    elif records:
        _wait_records(out / "results.jsonl", records, proc)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    # an interrupt during an XLA compile waits for the compile: minutes on a heavily shared machine
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Segmentation" not in err and "core dumped" not in err
    assert len(err.strip().splitlines()) <= 1, err
    assert "interrupted" in err
    if (out / "results.jsonl").exists():  # whatever was recorded reads back cleanly
        from bal.active.results import read_records

        assert len(read_records(out)) >= (records or 0)
