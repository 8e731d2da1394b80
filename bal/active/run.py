"""Running experiments: every strategy x seed of a config through the loop kernel, with I/O.

:func:`run` is the one entry point for every task (``bal run`` calls it). It
builds the task (every check that can fail runs here, before the run directory
is touched), takes the directory's writer lock, replays the runs recorded in
``results.jsonl`` (``--resume``), then steps each run to its end, appending one
record per cycle; the order of runs (seed-major, or the seeds of a strategy side
by side under ``run_map = "vmap"``) is in ARCHITECTURE.md.

With ``oracle = "human"`` the task is a :class:`bal.labeling.oracle.HumanTask`:
before each cycle a run receives the labels imported into the run directory's
label store, and it **pauses** (its queries in ``pending_queries.json``) when it
waits on queried units and no new label has arrived. The replay gives each
recorded cycle exactly the label batches imported before it (a batch holds the
record count of its import).
"""

from __future__ import annotations

from typing import Callable

from bal.active import kernel
from bal.active.results import RunDirectory, runs
from bal.active.tasks import build_task

__all__ = ["run", "run_one", "run_side_by_side"]


def _human(task, config, run_dir: RunDirectory):
    """``task`` wrapped for people as its oracle when the config says so."""
    if getattr(config, "oracle", "dataset") != "human" or getattr(task, "human", False):
        return task
    from bal.labeling.oracle import HumanTask

    return HumanTask(task, run_dir.path)


def _positions(records: list[dict]) -> dict[tuple[str, int, int], int]:
    """Each record's line in ``results.jsonl`` (human oracle: which label batches it saw)."""
    return {(r["strategy"], r["seed"], r["cycle"]): i for i, r in enumerate(records)}


def _next_position(run_dir: RunDirectory) -> int:
    """The line the next record takes in ``results.jsonl`` (a torn tail was dropped by ``prepare``)."""
    return run_dir.results_path.read_bytes().count(b"\n") if run_dir.results_path.exists() else 0


def _replay(task, strategy: str, seed: int, records: list[dict], run_dir: RunDirectory,
            positions: dict | None = None) -> kernel.LoopState:
    state = kernel.init(task, seed)
    human = getattr(task, "human", False)
    if human and positions is None:
        positions = _positions(run_dir.records() if run_dir.results_path.exists() else [])
    for r in records:
        where = f"{run_dir.results_path}: record of cycle {r['cycle']} ({strategy}, seed {seed})"
        if r["cycle"] != state.cycle:
            raise ValueError(f"{where} follows cycle {state.cycle - 1}: a cycle is missing or repeated")
        if human:  # the labels imported before this cycle ran
            state, _ = kernel.receive(task, state, task.answers(positions[(strategy, seed, r["cycle"])]))
        expected = task.counts(state.labels)
        for k, v in expected.items():
            if k in r and r[k] != v:
                raise ValueError(f"{where} has {k} = {r[k]} but the replay has {v}")
        try:
            state = kernel.replay_record(task, strategy, state, r)
        except ValueError as err:
            raise ValueError(f"{where}: acquired units do not fit the pool: {err}") from None
    if records and task.keeps_weights and not records[-1].get("final"):
        variables = run_dir.load_weights(strategy, seed, records[-1]["cycle"])
        state = state._replace(variables=variables)
    return state._replace(final=bool(records and records[-1].get("final")))


def run_one(task, strategy: str, seed: int, run_dir: RunDirectory, done: list[dict],
            on_cycle: Callable[[dict], None] | None = None, positions: dict | None = None) -> list[dict]:
    """Run (or resume) one strategy with one seed; returns all its records (a run with a
    human oracle returns when it pauses for labels)."""
    records = list(done)
    state = _replay(task, strategy, seed, records, run_dir, positions)
    human, stepped = getattr(task, "human", False), False
    while not state.final:
        if human:  # the labels imported so far; pause when waiting on people and none is new
            state, received = kernel.receive(task, state, task.answers(_next_position(run_dir)))
            if not received and task.awaiting(state.labels):
                break
        state, info = kernel.step(task, strategy, state)
        stepped = True
        _keep(task, strategy, state, info, run_dir, on_cycle)
        records.append(info.record)
    if human:
        task.pause(strategy, seed, state, records, fresh=stepped)
    return records


def _keep(task, strategy: str, state: kernel.LoopState, info: kernel.CycleInfo, run_dir: RunDirectory,
          on_cycle) -> None:
    """Make a stepped cycle durable: its weights (warm starts resume from them), then its record."""
    if task.keeps_weights and not state.final:
        run_dir.save_weights(strategy, state.seed, info.record["cycle"], state.variables)
    run_dir.append(info.record)
    if on_cycle is not None:
        on_cycle(info.record)


def run_side_by_side(task, strategy: str, seeds, run_dir: RunDirectory, done: dict,
                     on_cycle: Callable[[dict], None] | None = None) -> list[dict]:
    """Run (or resume) every seed of ``strategy`` side by side (:func:`bal.active.kernel.step_runs`):
    each cycle steps the runs at the earliest unfinished cycle together, so runs resumed at
    different cycles first catch up, and a run that ends leaves the others going. Every
    run's records equal those of :func:`run_one` (up to timings)."""
    records = {seed: list(done.get((strategy, seed), [])) for seed in seeds}
    states = {seed: _replay(task, strategy, seed, records[seed], run_dir) for seed in seeds}
    while live := [s for s in states.values() if not s.final]:
        cycle = min(s.cycle for s in live)
        for state, info in kernel.step_runs(task, strategy, [s for s in live if s.cycle == cycle]):
            _keep(task, strategy, state, info, run_dir, on_cycle)
            states[state.seed] = state
            records[state.seed].append(info.record)
    return [r for seed in seeds for r in records[seed]]


def side_by_side(task, config) -> bool:
    """Whether ``run`` advances the seeds of a strategy together: the backend policy's
    ``run_map = "vmap"`` (accelerators), several seeds, and a task whose oracle answers at once."""
    from bal import backend

    return (backend.policy().run_map == "vmap" and len(config.seeds) > 1
            and not getattr(task, "human", False))


def _restart_labeling(run_dir: RunDirectory) -> None:
    """A run directory without records (new, or ``--overwrite``): no query is pending any more;
    stored human labels are kept for the new runs, seen from their first cycle."""
    from bal.labeling import state

    (run_dir.path / state.PENDING).unlink(missing_ok=True)
    state.LabelStore(run_dir.path).rebase()


def run(config, out_dir, *, resume: bool = False, overwrite: bool = False, task=None,
        progress=None, **task_kwargs) -> list[dict]:
    """Run every strategy x seed of ``config``, appending records to ``out_dir``.

    Args:
      config: an :class:`bal.active.config.ExperimentConfig` or another task's config.
      out_dir: the run directory (``config.json``, ``results.jsonl``).
      resume / overwrite: continue the runs already there / discard them.
      task: a prebuilt task (default: :func:`bal.active.tasks.build_task`).
      progress: optional object with ``start(total, done)``, ``update(record)``, ``close()``.
      task_kwargs: passed to the task (``problem=``, ``oracle=``).

    Returns all records (resumed ones included). With ``oracle = "human"`` a run
    that awaits labels has stopped early; ``pending_queries.json`` lists them.

    Raises:
      ValueError / FileNotFoundError: bad settings or files, a directory that
        holds another config, or another writer on the directory — all before
        any training.
    """
    task = build_task(config, **task_kwargs) if task is None else task
    run_dir = RunDirectory(out_dir)
    task = _human(task, config, run_dir)
    strategies = tuple(getattr(config, "all_strategies", config.strategies))
    with run_dir.lock():
        recorded = run_dir.prepare(config, resume=resume, overwrite=overwrite)
        if overwrite or not recorded:
            _restart_labeling(run_dir)
        done, positions = runs(recorded), _positions(recorded)
        if progress is not None:
            # cycles per run for the ETA: the task's estimate, else cycles + 1
            cycles = task.expected_cycles() if hasattr(task, "expected_cycles") else config.cycles + 1
            total = len(strategies) * len(config.seeds) * cycles
            progress.start(total, sum(len(v) for v in done.values()))
        out, on_cycle = [], None if progress is None else progress.update
        try:
            if side_by_side(task, config):  # strategy-major: all seeds of a strategy at once
                for strategy in strategies:
                    out += run_side_by_side(task, strategy, config.seeds, run_dir, done, on_cycle)
            else:
                for seed in config.seeds:
                    for strategy in strategies:
                        out += run_one(task, strategy, seed, run_dir, done.get((strategy, seed), []),
                                       on_cycle=on_cycle, positions=positions)
        finally:
            if progress is not None:
                progress.close()
    return out

