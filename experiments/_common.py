"""What every research script shares: flags, running configs, printing results.

Each script defines one or more named :class:`ExperimentConfig` studies and a
``--smoke`` variant that runs in seconds (tests run every script that way).
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys

from bal.active.config import ExperimentConfig
from bal.active.loop import run_experiment
from bal.active.progress import Progress
from bal.report import format_summary, plot_learning_curves, summarize
from bal.runtime import relaunch_with_huge_pages

#: a tiny, offline version of any study: digits, an MLP, 2 cycles of 10, 1 seed
SMOKE = dict(dataset="digits", model="mlp", num_samples=4, initial_labels=20, cycles=2,
             acquisition_size=10, growth=None, label_budget=None,
             epochs=3, seeds=(0,), pool_subset=300, model_kwargs={}, data_dir=None, repeat=1)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", default=None, help="output directory (default: runs/<script>)")
    p.add_argument("--smoke", action="store_true", help="a tiny offline run in seconds")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--overwrite", action="store_true", help="discard earlier results")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="override the seeds")
    p.add_argument("--cycles", type=int, default=None, help="override the number of cycles")
    p.add_argument("--data-dir", default=None, help="dataset directory (default: BAL_DATA_DIR)")
    p.add_argument("--studies", nargs="+", default=None, help="run only these studies of the script")
    p.add_argument("--strategies", nargs="+", default=None, help="override the strategies (random is added)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    return p


def flag_overrides(args) -> dict:
    """The settings the shared flags override (--quiet, --seeds, --strategies, --cycles)."""
    overrides = {"quiet": args.quiet}
    if args.seeds:
        overrides["seeds"] = tuple(args.seeds)
    if args.strategies:
        overrides["strategies"] = tuple(args.strategies)
    if args.cycles is not None:
        overrides["cycles"] = args.cycles
    return overrides


def select_studies(script: str, studies: dict, names) -> dict:
    """The studies named by ``--studies`` (all when none), with a clear error for unknown names."""
    if not names:
        return studies
    unknown = sorted(set(names) - set(studies))
    if unknown:
        raise ValueError(f"unknown studies {unknown}; {script} has {sorted(studies)}")
    return {name: studies[name] for name in names}


def run_studies(script: str, studies: dict[str, ExperimentConfig], args, thresholds=(0.9, 0.95)):
    """Run every study into ``<out>/<study>``, then print its summary and plot path."""
    out = pathlib.Path(args.out or f"runs/{script}")
    for name, config in select_studies(script, studies, args.studies).items():
        overrides = dict(SMOKE) if args.smoke else {}
        if args.smoke and config.growth is not None:  # keep the study's growth rule, bounded by cycles
            overrides.update(acquisition_size=None, growth=config.growth)
        overrides.update(flag_overrides(args))
        if args.data_dir and not args.smoke:
            overrides["data_dir"] = args.data_dir
        config = dataclasses.replace(config, **overrides)
        print(f"== {script}/{name}: {config.dataset} {config.posterior} {config.model}, "
              f"{', '.join(config.all_strategies)}, seeds {list(config.seeds)}", flush=True)
        records = run_experiment(config, out / name, resume=args.resume, overwrite=args.overwrite,
                                 progress=Progress(quiet=config.quiet))
        print(format_summary(summarize(records, thresholds)))
        print(f"plot: {plot_learning_curves(out / name, title=f'{script}: {name}')}", flush=True)


def main(script: str, description: str, studies, argv=None):
    args = parser(description).parse_args(argv)
    relaunch_with_huge_pages()  # glibc's huge-page tunable, read only at process start
    try:
        run_studies(script, studies, args)
    except (ValueError, FileNotFoundError) as err:
        print(f"{script}: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0
