"""The ``bal`` command line.

    bal datasets                 which datasets are present and verified
    bal run [CONFIG] [--flags]   an active-learning experiment (offline quickstart by default)
    bal summary RUN_DIR          labels-to-accuracy table from a run's results
    bal plot RUN_DIR             learning-curve PNG from a run's results

Errors at the edge (bad settings, missing files) print one line on stderr and
exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
import typing

__all__ = ["main"]

QUICKSTART_DIR = "runs/quickstart"
#: the offline quickstart (no dataset setting): sized to finish in about two minutes on 2 cores
QUICKSTART = dict(dataset="digits", model="mlp", posterior="mc_dropout", strategies=["bald"],
                  seeds=[0, 1, 2], initial_labels=20, acquisition_size=10, cycles=8, epochs=300,
                  num_samples=10)


def _cmd_datasets(args) -> int:
    from bal import data

    statuses = data.status(args.data_dir)
    directory = data.resolve_data_dir(args.data_dir)
    print(f"data directory: {directory}")
    for s in statuses:
        print(str(s))
    return 0


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per :class:`ExperimentConfig` field, documented from the dataclass."""
    from bal.active.config import HELP, ExperimentConfig

    hints = typing.get_type_hints(ExperimentConfig)
    for field in dataclasses.fields(ExperimentConfig):
        flag = "--" + field.name.replace("_", "-")
        hint = hints[field.name]
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        help_text = f"{HELP.get(field.name, '')} (default: {default})".strip()
        if hint is bool:
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction,
                                default=None, help=help_text)
        elif field.name in ("strategies", "seeds"):
            kind = int if field.name == "seeds" else str
            parser.add_argument(flag, dest=field.name, nargs="+", type=kind, default=None,
                                help=help_text)
        elif field.name in ("model_kwargs", "acquisition_params"):
            parser.add_argument(flag, dest=field.name, type=_json_dict, default=None,
                                help=f"a JSON object: {help_text}")
        else:
            parser.add_argument(flag, dest=field.name, type=_scalar(hint), default=None,
                                help=help_text)


def _json_dict(text: str) -> dict:
    import json

    value = json.loads(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _scalar(hint):
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    kind = args[0]

    def parse(text: str):
        if text.lower() in ("none", "null"):
            return None
        return kind(text)

    parse.__name__ = getattr(kind, "__name__", "value")
    return parse


def _cmd_run(args) -> int:
    from bal.active.config import ExperimentConfig, load_config
    from bal.active.loop import run_experiment
    from bal.active.progress import Progress
    from bal.report import format_summary, plot_learning_curves, summarize
    from bal.runtime import relaunch_with_huge_pages

    relaunch_with_huge_pages()  # glibc's huge-page tunable, read only at process start

    settings = load_config(args.config) if args.config else {}
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(ExperimentConfig)
             if getattr(args, f.name, None) is not None}
    quickstart = "dataset" not in settings and "dataset" not in flags
    if quickstart:
        settings = {**QUICKSTART, **settings}
    settings.update(flags)
    config = ExperimentConfig.from_dict(settings)
    out = pathlib.Path(args.out or (QUICKSTART_DIR if quickstart else "runs/experiment"))
    if quickstart and not config.quiet:
        print(f"quickstart: offline digits data, {config.posterior} {config.model}, "
              f"strategies {', '.join(config.all_strategies)}, seeds {list(config.seeds)} -> {out}")
    progress = Progress(quiet=config.quiet)
    records = run_experiment(config, out, resume=args.resume, overwrite=args.overwrite,
                             progress=progress)
    print(format_summary(summarize(records, args.thresholds)))
    print(f"plot: {plot_learning_curves(out)}")
    print(f"results: {out / 'results.jsonl'}")
    return 0


def _cmd_summary(args) -> int:
    from bal.active.results import read_records
    from bal.report import format_summary, summarize

    print(format_summary(summarize(read_records(args.run_dir), args.thresholds, metric=args.metric)))
    return 0


def _cmd_plot(args) -> int:
    from bal.report import plot_learning_curves

    print(plot_learning_curves(args.run_dir, args.out, metric=args.metric))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bal", description="Bayesian deep active learning in JAX/Flax.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("datasets", help="list datasets and whether each is present and verified")
    p.add_argument("--data-dir", default=None, help="data directory (default: $BAL_DATA_DIR or cache)")
    p.set_defaults(func=_cmd_datasets)

    p = sub.add_parser(
        "run", help="run an active-learning experiment",
        description="Run strategies x seeds of active learning. Settings come from CONFIG "
                    "(.toml or .json) and are overridden by flags. Without a dataset setting "
                    "this runs the offline quickstart on the bundled digits set.")
    p.add_argument("config", nargs="?", help="a .toml or .json file of settings")
    p.add_argument("--out", default=None, help=f"run directory (default: {QUICKSTART_DIR} "
                                                "for the quickstart, else runs/experiment)")
    p.add_argument("--resume", action="store_true", help="continue the runs in --out")
    p.add_argument("--overwrite", action="store_true", help="discard results already in --out")
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.90, 0.95],
                   help="accuracies for the summary table (default: 0.90 0.95)")
    _add_setting_flags(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("summary", help="labels needed to reach accuracy thresholds, per strategy")
    p.add_argument("run_dir")
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.90, 0.95])
    p.add_argument("--metric", default=None, help="default: accuracy, or mean_iou for segmentation runs")
    p.set_defaults(func=_cmd_summary)

    p = sub.add_parser("plot", help="write learning curves (PNG) of a run directory")
    p.add_argument("run_dir")
    p.add_argument("--out", default=None, help="PNG path (default: RUN_DIR/learning_curves.png)")
    p.add_argument("--metric", default=None,
                   help="accuracy, nll, ece or brier (segmentation: mean_iou, pixel_accuracy); "
                        "default: accuracy, or mean_iou for segmentation runs")
    p.set_defaults(func=_cmd_plot)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, ImportError, KeyError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"bal {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bal {args.command}: interrupted; continue with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
