"""Strategy names: one grammar for every task.

    [<mode>_]<base>[_<unit>][_targeted]        or   stochastic(<score>[, mode=...][, coldness=...])

* ``<base>``: a pointwise score of :mod:`bal.acquisition.scores` (``bald``,
  ``entropy``, ``margin``, ``variation_ratios``, ``mean_std``,
  ``least_confidence``; aliases ``mutual_information``, ``mi``,
  ``max_entropy``, ``predictive_entropy``), or a rule the task offers besides
  scores (``random``; classification: ``batchbald``, ``badge``, ``coreset``;
  detection: ``box_bald``, ..., ``disagreement``);
* ``<mode>_``: stochastic acquisition of the score (Kirsch et al. 2023):
  ``softmax``, ``power``, ``softrank``; ``powerbald`` is ``power_bald``;
* ``_<unit>``: what a score is computed over when it is not the whole item:
  ``_crops`` (segmentation: crops of a grid), ``_heatmap`` (detection: the
  per-location class heatmap);
* ``_targeted``: class targeting, scores weighted by the predicted
  probability of the config's ``target_classes`` (segmentation, detection).

Names are case-insensitive and ``-`` reads as ``_``. :func:`parse` checks a
name against what a task offers and says what is wrong in one line.
"""

from __future__ import annotations

import ast
import re
from typing import Iterable, NamedTuple

__all__ = ["Name", "parse", "SCORE_ALIASES", "MODES"]

#: every spelling of a pointwise score -> its canonical name
SCORE_ALIASES = {
    "bald": "bald", "mutual_information": "bald", "mi": "bald",
    "entropy": "entropy", "max_entropy": "entropy", "predictive_entropy": "entropy",
    "margin": "margin", "variation_ratios": "variation_ratios", "mean_std": "mean_std",
    "least_confidence": "least_confidence",
}

#: the stochastic acquisition modes (prefixes)
MODES = ("softmax", "power", "softrank")

_CALL = re.compile(r"^stochastic\((?P<args>.*)\)$")


class Name(NamedTuple):
    """A parsed strategy name.

    Attributes:
      text: the name as written; base: the canonical score or rule (``"bald"``, ``"random"``, ...);
      score: True when ``base`` is a pointwise score; mode: the stochastic mode or None;
      unit: ``"crops"``, ``"heatmap"`` or None (whole items); targeted: class targeting;
      params: parameters written in the name (``stochastic(bald, coldness=2)``, the call form,
        whose ``mode`` is among them when written and else None).
    """

    text: str
    base: str
    score: bool
    mode: str | None = None
    unit: str | None = None
    targeted: bool = False
    params: tuple = ()


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _grammar(rules: tuple[str, ...], units: tuple[str, ...], targeting: bool, modes: bool) -> str:
    parts = ["<score>"]
    if modes:
        parts.insert(0, "[softmax_|power_|softrank_]")
    parts += [f"[_{u}]" for u in units]
    if targeting:
        parts.append("[_targeted]")
    rules_text = f" or one of {', '.join(rules)}" if rules else ""
    return f"use {''.join(parts)}{rules_text}, <score> one of {sorted(set(SCORE_ALIASES.values()))}"


def parse(name, *, task: str = "classification", rules: Iterable[str] = ("random",), units: Iterable[str] = (),
          targeting: bool = False, modes: bool = False) -> Name:
    """Parse ``name`` against what ``task`` offers.

    Args:
      rules: the non-score bases the task accepts (e.g. ``random``, ``batchbald``).
      units: the unit suffixes it accepts (``crops``, ``heatmap``).
      targeting: whether ``_targeted`` is accepted (not with ``random``).
      modes: whether stochastic modes (prefixes and the ``stochastic(...)`` form) are accepted.

    Raises:
      ValueError: one line naming the strategy and the grammar.
    """
    rules, units = tuple(rules), tuple(units)
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a strategy must be a non-empty name; got {name!r}")
    key = name.strip().lower().replace("-", "_")
    unknown = f"unknown {task} strategy {name!r}; {_grammar(rules, units, targeting, modes)}"
    call = _CALL.match(key.replace(" ", ""))
    if call:
        if not modes:
            raise ValueError(unknown)
        score, *rest = [p for p in call.group("args").split(",") if p] or [""]
        if not score or "=" in score:
            raise ValueError(f"{name!r}: write stochastic(<score>, mode=..., coldness=...); valid scores: "
                             f"{sorted(set(SCORE_ALIASES.values()))}")
        if score not in SCORE_ALIASES:
            raise ValueError(f"unknown score {score!r} in strategy {name!r}; valid scores: "
                             f"{sorted(set(SCORE_ALIASES.values()))}")
        params = []
        for part in rest:
            k, sep, v = part.partition("=")
            if not sep:
                raise ValueError(f"{name!r}: expected key=value after the score name; got {part!r}")
            params.append((k, _literal(v)))
        return Name(name, SCORE_ALIASES[score], True, dict(params).get("mode"), None, False, tuple(params))
    targeted = targeting and key.endswith("_targeted")
    if targeted:
        key = key[: -len("_targeted")]
    unit = next((u for u in units if key.endswith("_" + u)), None)
    if unit:
        key = key[: -len(unit) - 1]
    mode = None
    if modes and key == "powerbald":
        mode, key = "power", "bald"
    elif modes and "_" in key and key.split("_", 1)[0] in MODES and key.split("_", 1)[1] in SCORE_ALIASES:
        mode, key = key.split("_", 1)
    if key in SCORE_ALIASES:
        return Name(name, SCORE_ALIASES[key], True, mode, unit, targeted)
    if key in rules:
        if targeted and key == "random":
            raise ValueError(f"strategy {name!r}: random acquisition cannot be class-targeted (it uses no "
                             "predictions)")
        if unit and key != "random":  # random crops are a unit choice too; other rules pick whole items
            raise ValueError(f"strategy {name!r}: the _{unit} unit applies to scores and random, not to {key}")
        return Name(name, key, False, None, unit, targeted)
    raise ValueError(unknown)
