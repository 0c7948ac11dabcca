"""Deployment: ONNX, torch.export and TorchScript files of our layers and generators, and
streaming steps that run without Python, each checked against eager.

- :mod:`.writers`: ``exportable`` and the writers ``export_onnx`` / ``export_program`` /
  ``export_torchscript``;
- :mod:`.onnx_layout`: the export forms onnxruntime's blocked CPU kernels run well
  (``Conv1dAs2d``, ``with_2d_convs``, ``with_blocked_residuals``);
- :mod:`.runtime`: running a written file back (``run_onnx``, ``run_program``,
  ``run_torchscript``), its node counts and its error against eager;
- :mod:`.stream_graph`: ``export_streaming`` (one step per chunk, ONNX or ``.pt2``);
- :mod:`.onnx_stream`: ``OnnxStream``, that step run in onnxruntime with numpy.
"""

from upsampler.export import onnx_stream, runtime, stream_graph, writers
from upsampler.export.onnx_layout import Conv1dAs2d, with_2d_convs, with_blocked_residuals
from upsampler.export.onnx_stream import *  # noqa: F401,F403
from upsampler.export.runtime import *  # noqa: F401,F403
from upsampler.export.stream_graph import *  # noqa: F401,F403
from upsampler.export.writers import *  # noqa: F401,F403

__all__ = [
    *writers.__all__, *runtime.__all__, *stream_graph.__all__, *onnx_stream.__all__,
    "Conv1dAs2d", "with_2d_convs", "with_blocked_residuals",
]
