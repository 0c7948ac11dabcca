"""Deployment: TorchScript and ONNX files of our layers and generators, checked against eager.

- :mod:`.writers`: ``exportable`` and the writers ``export_torchscript`` / ``export_onnx``;
- :mod:`.onnx_layout`: the export forms onnxruntime's blocked CPU kernels run well
  (``Conv1dAs2d``, ``with_2d_convs``, ``with_blocked_residuals``);
- :mod:`.runtime`: running a written file back (``onnx_session``, ``run_onnx``,
  ``run_torchscript``), its node counts and its error against eager.
"""

from upsampler.export import runtime, writers
from upsampler.export.onnx_layout import Conv1dAs2d, with_2d_convs, with_blocked_residuals
from upsampler.export.runtime import *  # noqa: F401,F403
from upsampler.export.writers import *  # noqa: F401,F403

__all__ = [
    *writers.__all__, *runtime.__all__, "Conv1dAs2d", "with_2d_convs", "with_blocked_residuals",
]
