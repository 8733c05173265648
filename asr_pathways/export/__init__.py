"""Deployable sparse models: compact export, block-sparse CPU inference, ONNX (optional).

- :mod:`.sparse_linear`: ``BlockSparseLinear`` (8x1 / 1x1 blocks, C++ kernel built on first use).
- :mod:`.compact`: ``export_pathways`` / ``CompactModel`` (values of the union of pathways once, one
  block bitmap per pathway).
- :mod:`.fast`: ``sparse_decoding_model`` (every pruned matrix sparse: Linear layers, attention
  projections through :mod:`.attention`, the predictor LSTM through :mod:`.module_lstm`) and
  ``lean_greedy`` (the batch-1 decoding loop).
- :mod:`.onnx_export`: ``export_onnx`` (needs the optional ``onnx`` / ``onnxruntime`` packages);
  :mod:`.onnx_decode`: greedy and beam search over the ONNX graphs in onnxruntime.
- :mod:`.card`: the model card of an export (``model.json["card"]`` + ``README.md``).
- :mod:`.cli`: ``asr-pathways export``.
"""
