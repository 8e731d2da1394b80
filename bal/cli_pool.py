"""The pool commands of the ``bal`` command line (:mod:`bal.pools`).

    bal pool pack SOURCE OUT [--split train] [--test-split test] [--shard-size 65536]
                             [--format npy|array_record|both|auto] [--size H W] [--mode L|RGB] [--workers 4]
                             [--data-dir DIR] [--overwrite]
    bal pool score POOL --checkpoint CKPT --model gal_cnn --posterior mc_dropout --num-classes 10
                        [-k 100] [--strategy bald] [--num-samples 20] [--out topk.json]
                        [--state FILE] [--distributed [--coordinator HOST:PORT --num-processes N --process-id I]]

``pack`` writes a ``bal.data`` dataset (``digits``, ``mnist``, ...) or a folder
of PNG / JPEG images as ``.npy`` (and ArrayRecord) shards with a JSON index;
a dataset keeps its labels and classes, and its test split goes into
``OUT/test``, so ``bal run`` can use the folder (``dataset = "pool:OUT"``).
``score`` restores a posterior's variables from a :mod:`bal.checkpoint`
(orbax) checkpoint — of the variables, or of ``{"variables": ...}`` — scores
the pool (a packed pool or an image folder) with a pointwise strategy, and
writes the top-k global indices, names and scores as JSON. ``python -m
bal.pools pack|score ...`` is the same (e.g. under ``srun``). Errors are
``bal``'s: one line on stderr, status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

__all__ = ["add_commands", "main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {value}")
    return value


def _image_options(args) -> dict:
    return {"size": tuple(args.size) if args.size else None, "mode": args.mode, "workers": args.workers}


def _cmd_pack(args) -> int:
    from bal import data
    from bal.pools.pack import pack_dataset, pack_images

    source = pathlib.Path(args.source)
    options = dict(shard_size=args.shard_size, format=args.format, overwrite=args.overwrite)
    t0 = time.perf_counter()
    test_split = None if args.test_split == "none" else args.test_split
    if args.source in data.names():
        index = pack_dataset(args.source, args.out, split=args.split, test_split=test_split, data_dir=args.data_dir,
                             **options)
    elif source.is_dir():
        index = pack_images(source, args.out, **_image_options(args), **options)
    else:
        raise FileNotFoundError(f"{args.source} is neither a dataset ({', '.join(data.names())}) nor a folder "
                                "of images")
    meta = json.loads(index.read_text())
    formats = sorted({f for s in meta["shards"] for f in ("npy", "array_record") if f in s})
    print(f"packed {meta['num_items']} items of {tuple(meta['item_shape'])} {meta['dtype']} into "
          f"{len(meta['shards'])} shards ({', '.join(formats)}) in {time.perf_counter() - t0:.1f} s: {index}")
    if meta.get("test"):
        test = json.loads((index.parent / meta["test"] / index.name).read_text())
        print(f"packed the test split: {test['num_items']} items: {index.parent / meta['test'] / index.name}")
    return 0


def _model_kwargs(text):
    """``--model-kwargs`` JSON, lists as tuples (model options must be hashable)."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--model-kwargs is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise ValueError(f"--model-kwargs must be a JSON object; got {text!r}")
    freeze = lambda v: tuple(freeze(x) for x in v) if isinstance(v, list) else v  # noqa: E731
    return {k: freeze(v) for k, v in value.items()}


def _cmd_score(args) -> int:
    if args.distributed:
        from bal.pools.distributed import initialize

        initialize(args.coordinator, args.num_processes, args.process_id)
    elif args.coordinator or args.num_processes or args.process_id is not None:
        raise ValueError("--coordinator / --num-processes / --process-id need --distributed")
    import jax
    import numpy as np

    from bal import posteriors
    from bal.pools import open_pool, score

    source = open_pool(args.pool, storage=args.storage, **_image_options(args))
    model_kwargs = _model_kwargs(args.model_kwargs)
    posterior = posteriors.build(args.posterior, args.model, args.num_classes, num_samples=args.num_samples or 20,
                                 model_kwargs=model_kwargs)
    from bal.checkpoint import restore_variables

    variables = restore_variables(args.checkpoint, posterior, np.zeros((1,) + tuple(source.item_shape), np.float32))
    k = min(args.k, len(source))
    t0 = time.perf_counter()
    result = score(posterior, variables, source, jax.random.key(args.seed), k, strategy=args.strategy,
                   num_samples=args.num_samples, chunk_size=args.chunk_size, state_path=args.state,
                   save_every=args.save_every)
    seconds = time.perf_counter() - t0
    record = {"pool": str(args.pool), "num_items": len(source), "strategy": args.strategy, "k": k,
              "posterior": args.posterior, "model": args.model, "checkpoint": str(args.checkpoint),
              "num_samples": posterior.num_samples_for(args.num_samples), "seed": args.seed,
              "processes": jax.process_count(), "devices": jax.device_count(), "seconds": round(seconds, 3),
              "items_per_second": round(result.num_scored / max(seconds, 1e-9), 1),
              "indices": result.indices.tolist(), "names": source.names(result.indices),
              "scores": [float(s) for s in result.scores]}
    if jax.process_index() == 0:
        out = pathlib.Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        os.replace(tmp, out)
        print(f"scored {result.num_scored} items in {seconds:.1f} s ({record['items_per_second']:.0f} items/s, "
              f"{jax.process_count()} process(es)); top {k} by {args.strategy} written to {out}")
    return 0


def _add_pack(sub) -> None:
    p = sub.add_parser("pack", help="write a dataset or an image folder as .npy / ArrayRecord shards",
                       description="Write a bal.data dataset (digits, mnist, ...) or a folder of PNG/JPEG images "
                                   "into OUT as shards plus a pool.json index.")
    p.add_argument("source", help="a dataset name (bal datasets) or a folder of images")
    p.add_argument("out", help="the pool folder to write")
    p.add_argument("--split", default="train", help="dataset split (default: train)")
    p.add_argument("--test-split", default="test",
                   help="datasets: the split packed into OUT/test for `bal run` on the pool (default: test; "
                        "none: skip)")
    p.add_argument("--data-dir", default=None, help="data directory (default: $BAL_DATA_DIR or cache)")
    p.add_argument("--shard-size", type=_positive_int, default=65536, help="rows per shard (default: 65536)")
    p.add_argument("--format", choices=("npy", "array_record", "both", "auto"), default="auto",
                   help="shard files (default: auto = both when grain/array-record are installed, else npy)")
    p.add_argument("--overwrite", action="store_true", help="replace a pool already in OUT")
    _add_image_flags(p)
    p.set_defaults(func=_cmd_pack)


def _add_image_flags(p) -> None:
    p.add_argument("--size", type=_positive_int, nargs=2, metavar=("H", "W"), default=None,
                   help="image folders: resize every image to H x W (default: all must match the first)")
    p.add_argument("--mode", choices=("L", "RGB"), default=None,
                   help="image folders: grayscale or RGB (default: as the first image)")
    p.add_argument("--workers", type=_positive_int, default=4, help="image folders: decoding threads (default: 4)")


def _add_score(sub) -> None:
    p = sub.add_parser("score", help="top-k of a pool under a pointwise strategy, from a checkpoint",
                       description="Score POOL (a packed pool folder or an image folder) with a posterior restored "
                                   "from an orbax checkpoint; write the top-k indices as JSON.")
    p.add_argument("pool", help="a folder written by `bal pool pack`, or a folder of images")
    p.add_argument("--checkpoint", required=True, help="orbax checkpoint of the variables (bal.checkpoint.save)")
    p.add_argument("--model", required=True, help="bal.models name (mlp, gal_cnn, lenet5, resnet18)")
    p.add_argument("--posterior", required=True, help="deterministic, variational, mc_dropout, ensemble, ...")
    p.add_argument("--num-classes", type=_positive_int, required=True)
    p.add_argument("--model-kwargs", default=None,
                   help="JSON object of model options (e.g. '{\"hidden_sizes\": [64]}')")
    p.add_argument("-k", type=_positive_int, default=100, help="how many to keep (default: 100)")
    p.add_argument("--strategy", default="bald", help="a pointwise strategy (bald, entropy, margin, random, "
                                                      "power_bald, ...; default: bald)")
    p.add_argument("--num-samples", type=_positive_int, default=None, help="posterior samples (default: 20)")
    p.add_argument("--chunk-size", type=_positive_int, default=None, help="items per chunk (default: per backend)")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed of the prediction and selection (default: 0)")
    p.add_argument("--out", default="topk.json", help="JSON file to write (default: topk.json)")
    p.add_argument("--state", default=None, help="resumable progress file (rerun the same command to continue)")
    p.add_argument("--save-every", type=_positive_int, default=256, help="chunks between progress writes")
    p.add_argument("--storage", choices=("auto", "npy", "array_record"), default="auto",
                   help="shards to read from a packed pool (default: npy when present)")
    p.add_argument("--distributed", action="store_true",
                   help="jax.distributed.initialize() first (auto-detected under Slurm), score across processes")
    p.add_argument("--coordinator", default=None, help="with --distributed: HOST:PORT of process 0")
    p.add_argument("--num-processes", type=_positive_int, default=None, help="with --distributed")
    p.add_argument("--process-id", type=int, default=None, help="with --distributed")
    _add_image_flags(p)
    p.set_defaults(func=_cmd_score)


def add_commands(subparsers) -> None:
    """Add ``pool pack`` and ``pool score`` to ``bal``'s subcommands."""
    p = subparsers.add_parser("pool", help="pools of millions: pack into shards, score (bal.pools)",
                              description="Pack pools into shards and score them with flat memory.")
    sub = p.add_subparsers(dest="pool_command", required=True, parser_class=type(p))
    _add_pack(sub)
    _add_score(sub)


def main(argv=None) -> int:
    """``python -m bal.pools pack|score ...``: errors print one line and return 2, Ctrl-C returns 130."""
    from bal.cli import _Parser, _message
    from bal.interrupts import catch_interrupts, raise_if_interrupted

    parser = _Parser(prog="python -m bal.pools", description="Pack and score pools (bal.pools).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_pack(sub)
    _add_score(sub)
    args = parser.parse_args(argv)
    try:
        with catch_interrupts():
            code = args.func(args)
            raise_if_interrupted()
        return code
    except (ValueError, OSError, ImportError, KeyError) as err:
        print(f"{parser.prog} {args.command}: error: {_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog} {args.command}: interrupted; rerun with the same --state to continue",
              file=sys.stderr)
        return 130
