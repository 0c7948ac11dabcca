"""Command-line options Hydra passes as strings are refused by name, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from recipe_support import compose_config, load_recipe
from upsampler.recipe_support.errors import RecipeError
from upsampler.recipe_support.options import check_group, check_number, check_options


@pytest.mark.parametrize("values, message", [
    ({"figures": "flase"}, "figures must be true or false, got 'flase'"),
    ({"figures": 1}, "figures must be true or false, got 1"),
    ({"seed": "abc"}, "seed must be an integer, got 'abc'"),
    ({"seed": True}, "seed must be an integer, got True"),
    ({"num_threads": 0}, "num_threads must be a positive integer or null, got 0"),
    ({"num_threads": "2"}, "num_threads must be a positive integer or null, got '2'"),
])
def test_bad_values_are_named(values: dict, message: str) -> None:
    cfg = OmegaConf.create({"figures": True, "seed": 0, "num_threads": None, **values})
    with pytest.raises(RecipeError, match=message.replace("(", r"\(")):
        check_options(cfg, booleans=("figures",), integers=("seed",),
                      positive_or_null=("num_threads",))


def test_good_values_pass() -> None:
    cfg = OmegaConf.create({"figures": False, "seed": -3, "num_threads": 2})
    check_options(cfg, booleans=("figures",), integers=("seed",), positive_or_null=("num_threads",))


def test_an_option_inside_a_group_is_named_by_its_dotted_path() -> None:
    cfg = OmegaConf.create({"streaming": {"chunk_frames": 0}, "name": "x"})
    check_group(cfg, "streaming")
    with pytest.raises(RecipeError, match=r"^streaming.chunk_frames must be an integer >= 1 or "
                                          r"null, got 0$"):
        check_number(cfg, "streaming.chunk_frames", minimum=1, integer=True, nullable=True)
    with pytest.raises(RecipeError, match=r"^name must be a group of options \(key: value\), "
                                          r"got 'x'$"):
        check_group(cfg, "name")


def test_analyze_refuses_a_string_boolean_before_measuring(tmp_path: Path) -> None:
    cfg = compose_config("analyze", ["model=debug", "audio=16k_hop200", "figures=flase",
                                     f"output_dir={tmp_path}"])
    with pytest.raises(RecipeError, match="figures must be true or false, got 'flase'"):
        load_recipe("analyze").run(cfg)
    assert not (tmp_path / "report.json").exists()
