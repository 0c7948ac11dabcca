"""Where one call's time goes, by kind of tensor operation (``torch.profiler``, CPU).

The streaming section uses it to show why small chunks cost more than offline: matrix
products (convolutions included), elementwise ops (activations, residual adds, means),
joins and copies (``cat``, ``copy_``: moving stream state and gathered columns), and the
number of operator calls. Times are the main thread's self time per kind, so on several
threads an op's time is its wall time; the profiler adds a little to every call, so the
profiled wall time is above the timed one.
"""

from __future__ import annotations

import time
from typing import Callable

from torch.profiler import ProfilerActivity, profile

from upsampler.recipe_support.benchmarks.timing import MS

US_PER_MS = 1e3  # the profiler reports microseconds

PRODUCT_OPS = frozenset({
    "aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm",
    "aten::mkldnn_convolution", "aten::_slow_conv2d_forward", "aten::slow_conv_dilated2d",
})
ELEMENTWISE_OPS = frozenset({
    "aten::add", "aten::add_", "aten::sub", "aten::mul", "aten::mul_", "aten::div",
    "aten::div_", "aten::leaky_relu", "aten::tanh", "aten::addcmul_",
})
JOIN_COPY_OPS = frozenset({"aten::cat", "aten::copy_"})


def op_profile(call: Callable[[], object]) -> dict[str, float]:
    """Profile one ``call()``: ``profiled_ms`` (its wall time under the profiler),
    ``products_ms``, ``elementwise_ms``, ``joins_copies_ms`` and ``op_calls`` (every
    operator call, nested ones and views included)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        call()
        wall = time.perf_counter() - start
    totals = {"products_ms": 0.0, "elementwise_ms": 0.0, "joins_copies_ms": 0.0}
    calls = 0
    for event in prof.key_averages():
        calls += event.count
        for key, ops in (("products_ms", PRODUCT_OPS), ("elementwise_ms", ELEMENTWISE_OPS),
                         ("joins_copies_ms", JOIN_COPY_OPS)):
            if event.key in ops:
                totals[key] += event.self_cpu_time_total / US_PER_MS
    return {"profiled_ms": wall * MS, **totals, "op_calls": float(calls)}


__all__ = ["op_profile"]
