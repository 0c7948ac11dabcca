"""Deployment: TorchScript and ONNX files of our layers and generators, checked against eager.

- :mod:`.writers`: ``exportable`` and the writers ``export_torchscript`` / ``export_onnx``;
- :mod:`.onnx_layout`: the export forms onnxruntime's blocked CPU kernels run well
  (``Conv1dAs2d``, ``with_2d_convs``, ``with_blocked_residuals``);
- :mod:`.runtime`: running a written file back (``onnx_session``, ``run_onnx``,
  ``run_torchscript``), its node counts and its error against eager.
"""

from upsampler.export.onnx_layout import Conv1dAs2d, with_2d_convs, with_blocked_residuals
from upsampler.export.runtime import (
    max_abs_error,
    onnx_node_types,
    onnx_session,
    run_onnx,
    run_torchscript,
)
from upsampler.export.writers import (
    BATCH_AXIS,
    INPUT_NAME,
    LOWERINGS,
    MIN_EXPORT_LENGTH,
    OUTPUT_NAME,
    QUIET_LOGGERS,
    TIME_AXIS,
    TORCHSCRIPT_METHODS,
    PathLike,
    export_onnx,
    export_torchscript,
    exportable,
    quiet_onnx_logs,
)

__all__ = [
    "BATCH_AXIS",
    "INPUT_NAME",
    "LOWERINGS",
    "MIN_EXPORT_LENGTH",
    "OUTPUT_NAME",
    "QUIET_LOGGERS",
    "TIME_AXIS",
    "TORCHSCRIPT_METHODS",
    "PathLike",
    "Conv1dAs2d",
    "exportable",
    "export_onnx",
    "onnx_node_types",
    "onnx_session",
    "quiet_onnx_logs",
    "export_torchscript",
    "max_abs_error",
    "run_onnx",
    "run_torchscript",
    "with_2d_convs",
    "with_blocked_residuals",
]
