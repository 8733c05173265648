"""The built-in RNN-T model family: model, exact loss, decoding, SpecAugment and tokenizer.

Submodules are imported explicitly (``from asr_pathways.asr.model import RNNTModel``) so that
importing one does not pull in the others.
"""
