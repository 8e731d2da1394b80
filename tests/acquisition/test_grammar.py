"""One strategy-name grammar for every task: ``[<mode>_]<base>[_<unit>][_targeted]``."""

import pytest

from bal.acquisition.grammar import parse

SEG = dict(task="segmentation", units=("crops",), targeting=True)


@pytest.mark.parametrize("name, settings, expected", [
    ("bald", {}, ("bald", True, None, None, False)),
    ("Mutual-Information", {}, ("bald", True, None, None, False)),
    ("power_entropy", dict(modes=True), ("entropy", True, "power", None, False)),
    ("powerbald", dict(modes=True), ("bald", True, "power", None, False)),
    ("softrank_max_entropy", dict(modes=True), ("entropy", True, "softrank", None, False)),
    ("random", {}, ("random", False, None, None, False)),
    ("batchbald", dict(rules=("random", "batchbald")), ("batchbald", False, None, None, False)),
    ("entropy_crops", SEG, ("entropy", True, None, "crops", False)),
    ("bald_crops_targeted", SEG, ("bald", True, None, "crops", True)),
    ("random_crops", SEG, ("random", False, None, "crops", False)),
    ("margin_targeted", SEG, ("margin", True, None, None, True)),
    ("bald_heatmap_targeted", dict(task="detection", units=("heatmap",), targeting=True,
                                   rules=("random", "box_bald")), ("bald", True, None, "heatmap", True)),
    ("box_bald_targeted", dict(task="detection", units=("heatmap",), targeting=True,
                               rules=("random", "box_bald")), ("box_bald", False, None, None, True)),
])
def test_parses(name, settings, expected):
    parsed = parse(name, **settings)
    assert (parsed.base, parsed.score, parsed.mode, parsed.unit, parsed.targeted) == expected and parsed.text == name


def test_the_call_form_keeps_its_parameters():
    parsed = parse("stochastic( margin , mode='softrank', coldness=0.5 )", modes=True)
    assert parsed.base == "margin" and parsed.mode == "softrank" and dict(parsed.params) == {
        "mode": "softrank", "coldness": 0.5}


@pytest.mark.parametrize("name, settings, message", [
    ("bald_crops", {}, "unknown classification strategy 'bald_crops'"),  # no crops in classification
    ("power_bald", {}, "unknown classification strategy"),  # modes only where the task has them
    ("bald_targeted", {}, "unknown classification strategy"),
    ("random_targeted", SEG, "cannot be class-targeted"),
    ("bald_tiles", SEG, r"unknown segmentation strategy 'bald_tiles'; use <score>\[_crops\]\[_targeted\]"),
    ("stochastic(foo)", dict(modes=True), "unknown score 'foo'"),
    ("stochastic(bald, 3)", dict(modes=True), "expected key=value"),
    ("box_bald_heatmap", dict(task="detection", units=("heatmap",), rules=("box_bald",)),
     "applies to scores and random"),
    ("", {}, "non-empty name"),
    (3, {}, "non-empty name"),
])
def test_errors_name_the_strategy_and_the_grammar(name, settings, message):
    with pytest.raises(ValueError, match=message):
        parse(name, **settings)
