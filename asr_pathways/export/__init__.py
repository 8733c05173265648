"""Deployable sparse models: compact export, block-sparse CPU inference, ONNX (optional).

- :mod:`.sparse_linear`: ``BlockSparseLinear`` (8x1 / 1x1 blocks, C++ kernel built on first use).
- :mod:`.compact`: ``export_pathways`` / ``CompactModel`` (values of the union of pathways once, one
  block bitmap per pathway).
- :mod:`.onnx_export`: ``export_onnx`` (needs the optional ``onnx`` / ``onnxruntime`` packages).
- :mod:`.cli`: ``asr-pathways export``.
"""
