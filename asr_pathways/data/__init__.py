"""Corpus building (espeak-ng synthesis, MLS and folder imports) and reading (features, batches).

Knows nothing about models. See docs/architecture.md for the corpus layout and contracts.
"""
