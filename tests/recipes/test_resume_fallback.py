"""resume=true falls back to the previous complete pair when the newest does not load.

Issue 21 item 18: a damaged ``do_`` was a ``KeyError``/``TypeError`` traceback and a broken
latest pair ended the run with "[Errno 22]" although an earlier pair was fine. Now the
broken pair is named with its reason in a warning, renamed ``<name>.unloadable`` (so pruning
cannot keep it over the pairs the run writes) and the run continues the previous pair; when
no pair loads the run is refused with one line. Logs of a run without checkpoints say so
instead of "step 0" / "step None".
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from recipe_support import compose_config, load_recipe
from training_support import (  # noqa: F401 (one_thread: a fixture)
    one_thread,
    tiny_train_overrides,
    write_corpus,
)
from upsampler.recipe_support.errors import RecipeError
from upsampler.recipe_support.train_records import read_record
from upsampler.training.loop import NonFiniteLossError, Trainer

train = load_recipe("train")
pytestmark = pytest.mark.usefixtures("one_thread")
SAMPLE_RATE = 16000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"), 4, 0, SAMPLE_RATE // 4)


def run(corpus: Path, output_dir: Path, *overrides: str) -> dict:
    return train.run(compose_config("train", tiny_train_overrides(corpus, output_dir,
                                                                  *overrides)))


@pytest.fixture(scope="module")
def base_run(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-step run: pairs at steps 1 and 2."""
    folder = tmp_path_factory.mktemp("base") / "run"
    run(corpus, folder)
    return folder


def copy_run(base: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(base, target, ignore=shutil.ignore_patterns(".run.lock"))
    return target


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def wrong_shape(path: Path) -> None:
    torch.save({"mpd": [1, 2], "msd": {}, "optim_g": {}, "optim_d": {}, "steps": 2}, path)


def garbage(path: Path) -> None:
    path.write_bytes(b"\x00garbage, not a torch file" * 10)


@pytest.mark.parametrize(("name", "damage", "reason"), [
    ("do_00000002", truncate, "is not readable: truncated or damaged"),
    ("do_00000002", wrong_shape, "does not hold what a do_ file holds (TypeError"),
    ("g_00000002", garbage, "is not readable: not a torch file"),
])
def test_broken_newest_pair_falls_back_to_the_previous_one(
        corpus: Path, base_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        name: str, damage: Callable[[Path], None], reason: str) -> None:
    folder = copy_run(base_run, tmp_path)
    damage(folder / name)
    with caplog.at_level(logging.INFO, logger="train"):
        result = run(corpus, folder, "resume=true", "max_steps=3")
    assert result["step"] == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"{str(folder / name)!r} {reason}" in w for w in warnings), warnings
    assert any("continuing from the earlier pair at step 1 instead of step 2; the unloadable "
               "files are renamed g_00000002.unloadable, do_00000002.unloadable" in w
               for w in warnings), warnings
    assert "resumed from step 1" in caplog.text
    assert (folder / f"{name}.unloadable").is_file()  # kept for inspection, out of the way
    for step in (1, 2, 3):  # step 2 trained again from step 1, and written whole
        torch.load(folder / f"do_{step:08d}", weights_only=True)
    assert read_record(folder)["history"][-1]["from_step"] == 1


def test_no_loadable_pair_is_refused_with_one_line(corpus: Path, base_run: Path,
                                                   tmp_path: Path) -> None:
    folder = copy_run(base_run, tmp_path)
    truncate(folder / "do_00000002")
    garbage(folder / "g_00000001")
    with pytest.raises(RecipeError) as info:
        run(corpus, folder, "resume=true", "max_steps=3")
    message = str(info.value)
    assert message.startswith(f"resume=true but no checkpoint pair in {folder} loads (step 2: ")
    assert "do_00000002' is not readable" in message and "g_00000001' is not readable" in message
    assert "\n" not in message
    assert sorted(p.name for p in folder.glob("*_0*")) == [  # a refusal renames nothing
        "do_00000001", "do_00000002", "g_00000001", "g_00000002"]


def test_logs_of_a_run_without_checkpoints_say_so(corpus: Path, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with caplog.at_level(logging.INFO, logger="train"):
        run(corpus, tmp_path / "run", "max_steps=1", "checkpoint_every=5")
    finished = [r.getMessage() for r in caplog.records if r.getMessage().startswith("finished")]
    assert finished and finished[0].endswith("last checkpoint step 1, no validation run")

    def diverge(*args: object) -> None:
        raise NonFiniteLossError("step 1: the generator loss is nan")

    monkeypatch.setattr(Trainer, "train_step", diverge)
    with pytest.raises(RecipeError) as info:
        run(corpus, tmp_path / "nan", "max_steps=1")
    assert str(info.value).endswith(f"stopped. No checkpoint pair written in {tmp_path / 'nan'}")
