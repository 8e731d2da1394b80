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

from bal.interrupts import catch_interrupts, raise_if_interrupted

__all__ = ["main"]

QUICKSTART_DIR = "runs/quickstart"
#: the offline quickstart (no dataset setting): sized to finish in about two minutes on 2 cores.
#: Margin and BALD over MC-dropout predictions against random, 3 seeds; measured over 5 seeds,
#: margin beat random's learning-curve AUC in 5/5 seeds and BALD in 4/5 (issue 14)
QUICKSTART = dict(dataset="digits", model="mlp", posterior="mc_dropout", strategies=["margin", "bald"],
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


def _setting_fields():
    """``(field, type hint, config class)`` of every task's settings, each name once
    (classification's first: its defaults are the ones ``--help`` shows)."""
    from bal.active.config import TASKS, config_class

    seen = {}
    for task in TASKS:
        cls = config_class(task)
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            seen.setdefault(field.name, (field, hints[field.name], cls))
    return list(seen.values())


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per setting of any task, documented from the dataclasses."""
    from bal.active.config import HELP
    from bal.active.detection_config import HELP as DETECTION_HELP
    from bal.active.segmentation.config import HELP as SEGMENTATION_HELP

    for field, hint, cls in _setting_fields():
        flag = "--" + field.name.replace("_", "-")
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        text = HELP.get(field.name) or SEGMENTATION_HELP.get(field.name) or DETECTION_HELP.get(field.name, "")
        if cls.TASK != "classification":
            text = f"[{cls.TASK}] {text}"
        help_text = f"{text} (default: {default})".strip()
        if hint is bool:
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=help_text)
        elif typing.get_origin(hint) is tuple or tuple in map(typing.get_origin, typing.get_args(hint)):
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            inner = typing.get_args(args[0] if typing.get_origin(hint) is not tuple else hint)[0]
            parser.add_argument(flag, dest=field.name, nargs="+", type=_scalar(inner), default=argparse.SUPPRESS,
                                help=help_text)
        elif hint is dict:
            parser.add_argument(flag, dest=field.name, type=_json_dict, default=argparse.SUPPRESS,
                                help=f"a JSON object: {help_text}")
        else:
            parser.add_argument(flag, dest=field.name, type=_scalar(hint), default=argparse.SUPPRESS,
                                help=help_text)


def _unset(value, hint):
    if isinstance(value, list) and value == [None]:
        return None if type(None) in typing.get_args(hint) else ()
    return value


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
    from bal.active.config import config_from_dict, load_config
    from bal.active.progress import Progress
    from bal.active.run import run
    from bal.report import format_summary, summarize, write_report

    settings = load_config(args.config) if args.config else {}
    # flags given (absent ones are not in args); `none` unsets an optional setting, and a list
    # setting given as `none` alone becomes empty (or unset where it may be)
    flags = {field.name: _unset(getattr(args, field.name), hint) for field, hint, _ in _setting_fields()
             if hasattr(args, field.name)}
    quickstart = not ({"dataset", "task"} & (set(settings) | set(flags)))
    if quickstart:
        settings = {**QUICKSTART, **settings}
    settings.update(flags)
    config = config_from_dict(settings)
    if args.thresholds:  # checked before training, not after it
        from bal.report.summary import check_thresholds

        check_thresholds(args.thresholds, "accuracy")  # every task's metric is a fraction
    out = pathlib.Path(args.out or (QUICKSTART_DIR if quickstart else "runs/experiment"))
    if quickstart and not config.quiet:
        print(f"quickstart: offline digits data, {config.posterior} {config.model}, "
              f"strategies {', '.join(config.all_strategies)}, seeds {list(config.seeds)} -> {out}")
    progress = Progress(quiet=config.quiet)
    records = run(config, out, resume=args.resume, overwrite=args.overwrite, progress=progress)
    # the quickstart's 100 labels of digits sit below 95 %: compare where random gets to
    thresholds = args.thresholds or ([0.85, 0.90] if quickstart else None)
    print(format_summary(summarize(records, thresholds)))
    summary, plot = write_report(out, thresholds)
    print(f"plot: {plot}")
    print(f"summary: {summary}")
    print(f"results: {out / 'results.jsonl'}")
    return 0


def _cmd_summary(args) -> int:
    from bal.report import format_summary, stopping_text, summarize
    from bal.report.records import read_sources

    records, _ = read_sources(args.run_dir)
    print(format_summary(summarize(records, args.thresholds, metric=args.metric)))
    if len(args.run_dir) > 1:
        if args.write:
            raise ValueError("--write writes one run directory's summary.md: give one RUN_DIR")
        return 0
    run_dir = args.run_dir[0]
    stops = stopping_text(run_dir, records)
    if stops:
        print("\n" + stops)
    if args.write:
        from bal.report import ANNOTATION_PLOT, annotation_timed, write_report

        summary, plot = write_report(run_dir, args.thresholds, metric=args.metric)
        timed = annotation_timed(records)  # people's annotation time: plotted too
        files = [summary, plot, *([plot.parent / ANNOTATION_PLOT] if timed else [])]
        print(f"wrote {', '.join(map(str, files[:-1]))} and {files[-1]}")
    return 0


def _cmd_plot(args) -> int:
    if args.cycles:  # the talk's per-cycle bars
        from bal.report.cycles import plot_cycle_bars

        print(plot_cycle_bars(args.run_dir, args.cycles, args.out, metric=args.metric))
        return 0
    from bal.report import plot_learning_curves

    print(plot_learning_curves(args.run_dir, args.out, metric=args.metric, x_key=args.x))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with the project's one-line errors (no usage block), status 2."""

    def error(self, message):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from bal.cli_labeling import add_commands as add_labeling_commands
    from bal.cli_pool import add_commands as add_pool_commands

    parser = _Parser(
        prog="bal", description="Bayesian deep active learning in JAX/Flax.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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
    p.add_argument("--thresholds", type=float, nargs="+", default=None,
                   help="accuracies for the summary table (default: 0.90 0.95; quickstart 0.85 0.90)")
    _add_setting_flags(p)
    p.set_defaults(func=_cmd_run)

    several = ("several run directories are read as one (strategies of a most_informative = false run "
               "are named least_<name>)")
    p = sub.add_parser("summary", help="labels needed to reach accuracy thresholds, per strategy")
    p.add_argument("run_dir", nargs="+", help=several)
    p.add_argument("--thresholds", type=float, nargs="+", default=None,
                   help="metric levels to reach (default: 0.90 0.95 accuracy; for mIoU / mAP 90 %% and 100 %% "
                        "of random's final value)")
    p.add_argument("--metric", default=None, help="default: accuracy, or mean_iou for segmentation runs")
    p.add_argument("--write", action="store_true",
                   help="also write RUN_DIR/summary.md and learning_curves.png (e.g. for committed results)")
    p.set_defaults(func=_cmd_summary)

    p = sub.add_parser("plot", help="write learning curves (PNG) of a run directory")
    p.add_argument("run_dir", nargs="+", help=several)
    p.add_argument("--out", default=None, help="PNG path (default: the first RUN_DIR/learning_curves.png)")
    p.add_argument("--metric", default=None,
                   help="accuracy, nll, ece or brier (segmentation: mean_iou, pixel_accuracy); "
                        "default: accuracy, or mean_iou for segmentation runs")
    p.add_argument("--x", default=None, metavar="KEY",
                   help="the x axis: a record key such as cycle or num_labels (default: the label count)")
    p.add_argument("--cycles", type=int, nargs="+", default=None, metavar="C",
                   help="instead of curves, bars of each strategy's metric after these cycles (e.g. 1 2 6; "
                        "default path RUN_DIR/cycle_bars.png)")
    p.set_defaults(func=_cmd_plot)
    add_labeling_commands(sub)
    add_pool_commands(sub)
    return parser


def _message(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:  # e.g. "Permission denied: 'runs/x'"
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def main(argv=None) -> int:
    """Run one command; errors print one line and return 2, Ctrl-C returns 130."""
    command = "bal"
    # the handler goes in before anything imports jax: a Ctrl-C during that import can land in
    # jax's gc callback, where Python swallows it, and the run would go on
    with catch_interrupts():
        try:
            args = build_parser().parse_args(argv)
            command = f"bal {args.command}"
            code = args.func(args)
            raise_if_interrupted()  # a Ctrl-C swallowed in a gc callback still ends in 130
            return code
        except BrokenPipeError:  # `bal summary RUN | head`: the reader left; not an error of ours
            return 141
        except (ValueError, OSError, ImportError, KeyError) as err:
            print(f"{command}: error: {_message(err)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"{command}: interrupted; continue with --resume", file=sys.stderr)
            return 130


def console_main() -> None:
    """The ``bal`` executable. Leaves with ``os._exit``: records are already on disk
    (fsync'd), and a normal interpreter shutdown can crash (SIGSEGV) while an XLA
    compile thread of an interrupted run is still going."""
    import os

    try:
        if sys.argv[1:2] == ["run"]:  # glibc's huge-page tunable is read only at process start
            from bal.runtime import relaunch_with_huge_pages

            relaunch_with_huge_pages()
        code = main()
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside main's handler
        print("bal: interrupted; continue with --resume", file=sys.stderr)
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    console_main()
