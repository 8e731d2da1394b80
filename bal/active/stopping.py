"""When more labels stop paying: stopping criteria computed every cycle (issue 19).

A task whose config has ``stop_set_size > 0`` evaluates each cycle's model on a
fixed *stop set* of pool items (no labels needed) and reports, in the cycle's
metrics, the predicted classes there (``stop_predictions``, compact) and the
mean predictive entropy (``stop_entropy``). The kernel adds ``stop_kappa`` and
asks :func:`stop_reason` whether a criterion named in ``stop_on`` ends the run:

* ``"kappa"`` -- *stabilizing predictions* (Bloodgood & Vijay-Shanker 2009):
  Cohen's kappa between consecutive models' predictions on the stop set; stop
  once the mean of the last ``stop_window`` kappas is at least
  ``kappa_threshold`` (default :data:`KAPPA_THRESHOLD` = 0.96; the paper's 0.99
  is never reached by deep models retrained from scratch every cycle, whose
  retraining noise alone caps kappa near 0.97 on MNIST: RESULTS.md).
* ``"plateau"`` -- *uncertainty plateau*: the stop set's mean predictive
  entropy is below ``plateau_threshold`` (nats), or changed by less than
  ``plateau_epsilon`` over the last ``stop_window`` cycles.

The label budget is the task's own ``finished``. :func:`would_stop` replays the
criteria over a finished run's records, so ``bal summary`` can show where each
would have stopped and what accuracy that gave up
(:func:`bal.report.stopping.format_stopping`, beside the rules that read the records
alone, with no stop set, for ``bal labels status``).
"""

from __future__ import annotations

import base64
import math
from typing import Sequence

import numpy as np

__all__ = ["CRITERIA", "KAPPA_THRESHOLD", "FIELDS", "trace", "extend", "cohen_kappa", "encode_predictions",
           "decode_predictions", "observe", "stop_reason", "would_stop", "stop_set_statistics"]

#: the default kappa threshold: on the Gal et al. 2017 MNIST setup it stopped BALD within 1 accuracy
#: point of running on to 500 labels in 3 of 3 seeds (chosen on those seeds; RESULTS.md)
KAPPA_THRESHOLD = 0.96

CRITERIA = ("kappa", "plateau")


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two labelings ``a, b: int [N]``: ``(p_o - p_e) / (1 - p_e)``, where
    ``p_o`` is the observed agreement and ``p_e`` the agreement expected by chance from the
    marginals. Two identical constant labelings (``p_e = 1``) agree fully: 1."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"kappa needs two labelings of equal length >= 1; got shapes {a.shape} and {b.shape}")
    num = int(max(a.max(), b.max())) + 1
    observed = float(np.mean(a == b))
    expected = float(np.dot(np.bincount(a, minlength=num), np.bincount(b, minlength=num))) / a.size ** 2
    if expected >= 1.0:
        return 1.0 if observed >= 1.0 else 0.0
    return (observed - expected) / (1.0 - expected)


def encode_predictions(classes: np.ndarray) -> str:
    """Predicted classes ``int [N]`` as a short string for a JSON record (base64 of uint8 / uint16)."""
    classes = np.asarray(classes)
    dtype = np.uint8 if classes.max(initial=0) < 256 else np.uint16
    return f"{np.dtype(dtype).itemsize}:" + base64.b64encode(classes.astype(dtype).tobytes()).decode()


def decode_predictions(text: str) -> np.ndarray:
    """The inverse of :func:`encode_predictions`."""
    try:
        size, data = text.split(":", 1)
        return np.frombuffer(base64.b64decode(data, validate=True), {"1": np.uint8, "2": np.uint16}[size])
    except (ValueError, KeyError, AttributeError) as err:
        raise ValueError(f"stop_predictions is corrupt ({err})") from None


def stop_set_statistics(log_probs: np.ndarray) -> dict:
    """The stop-set fields of a cycle's metrics from the predictive ``log_probs [N, C]``."""
    log_probs = np.asarray(log_probs, np.float64)
    entropy = -np.sum(np.exp(log_probs) * log_probs, axis=-1)
    return {"stop_predictions": encode_predictions(np.argmax(log_probs, axis=-1)),
            "stop_entropy": float(np.mean(entropy))}


#: the fields of a cycle's record the criteria read (kept in the loop state, replayed on resume)
FIELDS = ("stop_predictions", "stop_kappa", "stop_entropy")


def trace(record: dict) -> dict:
    """What the criteria need of one cycle's record or metrics."""
    return {k: record[k] for k in FIELDS if k in record}


def extend(history: tuple, record: dict) -> tuple:
    """``history`` with the cycle of ``record`` appended; only the newest cycle keeps its stop-set
    predictions (kappa compares consecutive models, so older ones are never read again)."""
    older = tuple({k: v for k, v in h.items() if k != "stop_predictions"} for h in history[-1:])
    return history[:-1] + older + (trace(record),)


def observe(history: Sequence[dict], metrics: dict) -> dict:
    """``metrics`` with ``stop_kappa`` against the previous cycle (``None`` at the first cycle,
    or when the task has no stop set)."""
    if "stop_predictions" not in metrics:
        return metrics
    previous = history[-1].get("stop_predictions") if history else None
    kappa = None
    if previous is not None:
        kappa = round(cohen_kappa(decode_predictions(previous), decode_predictions(metrics["stop_predictions"])), 6)
    return {**metrics, "stop_kappa": kappa}


def _kappa_stops(history: Sequence[dict], threshold: float, window: int) -> bool:
    kappas = [h.get("stop_kappa") for h in history[-window:]]
    return len(kappas) == window and None not in kappas and float(np.mean(kappas)) >= threshold


def _plateau_stops(history: Sequence[dict], threshold: float | None, epsilon: float | None, window: int) -> bool:
    values = [h.get("stop_entropy") for h in history]
    if not values or values[-1] is None:
        return False
    if threshold is not None and values[-1] < threshold:
        return True
    recent = values[-(window + 1):]
    return (epsilon is not None and len(recent) == window + 1 and None not in recent
            and max(recent) - min(recent) < epsilon)


def stop_reason(config, history: Sequence[dict]) -> str | None:
    """The first criterion of ``config.stop_on`` that ends the run after the cycles ``history``
    (their metrics, oldest first, the current cycle last), or ``None``."""
    window = getattr(config, "stop_window", 3)
    for criterion in getattr(config, "stop_on", ()):
        if criterion == "kappa" and _kappa_stops(history, config.kappa_threshold, window):
            return "kappa"
        if criterion == "plateau" and _plateau_stops(history, config.plateau_threshold, config.plateau_epsilon,
                                                     window):
            return "plateau"
    return None


def would_stop(records: Sequence[dict], *, kappa_threshold: float = KAPPA_THRESHOLD, window: int = 3,
               plateau_threshold: float | None = None, plateau_epsilon: float | None = None) -> dict:
    """For one run's records (any order): the cycle at which each criterion would have ended it.

    Returns ``{criterion: {"cycle", "num_labels", "accuracy", "final_accuracy", "labels_saved",
    "accuracy_given_up"} or None}`` (``None``: it would not have stopped before the run ended).
    """
    records = sorted(records, key=lambda r: r["cycle"])
    if not records or "stop_entropy" not in records[0]:
        return {}
    last = records[-1]
    rules = {"kappa": lambda h: _kappa_stops(h, kappa_threshold, window),
             "plateau": lambda h: _plateau_stops(h, plateau_threshold, plateau_epsilon, window)}
    out = {}
    for name, rule in rules.items():
        if name == "plateau" and plateau_threshold is None and plateau_epsilon is None:
            continue
        out[name] = None
        for i in range(len(records)):
            if rule(records[:i + 1]):
                r = records[i]
                out[name] = {"cycle": r["cycle"], "num_labels": r.get("num_labels"), "accuracy": r.get("accuracy"),
                             "final_accuracy": last.get("accuracy"),
                             "labels_saved": _diff(last.get("num_labels"), r.get("num_labels")),
                             "accuracy_given_up": _diff(last.get("accuracy"), r.get("accuracy"))}
                break
    return out


def _diff(a, b):
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return None
    return round(a - b, 6)
