"""Fbank features and monolingual batch streams (duration cap, weights, exact resume)."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from asr_pathways.asr.tokenizer import tokenizer_for_corpus
from asr_pathways.data.batches import LanguageStream, MixedStream, compute_fbank, eval_batches, language_streams, sample_languages
from asr_pathways.data.corpus import Corpus
from asr_pathways.data.synth import SynthConfig, build_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("b") / "c"
    build_corpus(SynthConfig(out=out, languages=["en", "it"], hours={"en": 0.02, "it": 0.01}, test_utts=4, dev_utts=2, train_speakers=6, eval_speakers=2, progress=False))
    return Corpus(out), tokenizer_for_corpus(out, 64)


def test_fbank_shape_determinism_and_lhotse_agreement():
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(16000 + 123)).astype(np.float32)
    f = compute_fbank(x)
    assert f.shape == (round(len(x) / 160), 80) and f.dtype == torch.float32
    assert torch.equal(f, compute_fbank(torch.from_numpy(x)))
    from lhotse import Fbank, FbankConfig

    ref = Fbank(FbankConfig(num_mel_bins=80, dither=0.0, snip_edges=False)).extract(x, 16000)
    assert np.allclose(f.numpy(), ref, atol=1e-4)


def test_stream_batches(corpus):
    c, tok = corpus
    s = LanguageStream(c.cuts("en", "train"), tok, "en", max_duration=12.0, seed=0)
    seen = []
    for _ in range(len(s.plan(0))):
        b = s.next()
        assert b.language == "en" and b.features.dtype == torch.float32 and b.features.shape[2] == 80
        assert b.features.shape[0] == b.tokens.shape[0] == len(b.cut_ids)
        durs = {cut.id: cut.duration for cut in s.cuts}
        assert len(b.cut_ids) == 1 or len(b.cut_ids) * max(durs[i] for i in b.cut_ids) <= 12.0
        assert (b.tokens[b.tokens != 0] > 0).all() and int(b.token_lens.max()) == b.tokens.shape[1]
        for k, n in enumerate(b.token_lens.tolist()):
            assert (b.tokens[k, n:] == 0).all() and tok.decode(b.tokens[k, :n].tolist()) == b.texts[k]
        assert int(b.feature_lens.max()) == b.features.shape[1]
        seen += b.cut_ids
    assert sorted(seen) == sorted(cut.id for cut in s.cuts)  # one epoch = every cut once
    assert s.state_dict()["epoch"] == 0 and s.next_indices() is not None and s.state_dict()["epoch"] == 1
    assert s.plan(1) != s.plan(0) or len(s.plan(0)) == 1


def test_resume_exact(corpus):
    c, tok = corpus
    mk = lambda: {l: LanguageStream(c.cuts(l, "train"), tok, l, max_duration=10.0, seed=5) for l in c.languages}  # noqa: E731
    weights = {"en": 2 / 3, "it": 1 / 3}
    a = mk()
    for step in range(9):
        for lang in sample_languages(c.languages, weights, 1, seed=7, step=step):
            a[lang].next_indices()
    state = {l: s.state_dict() for l, s in a.items()}
    want = [a[l].next().cut_ids for step in range(9, 13) for l in sample_languages(c.languages, weights, 1, seed=7, step=step)]
    b = mk()
    for l, st in state.items():
        b[l].load_state_dict(st)
    got = [b[l].next().cut_ids for step in range(9, 13) for l in sample_languages(c.languages, weights, 1, seed=7, step=step)]
    assert got == want
    # the same seed from scratch gives the same sequence
    x, y = mk(), mk()
    assert [x["en"].next().cut_ids for _ in range(3)] == [y["en"].next().cut_ids for _ in range(3)]


def test_weights_respected(corpus):
    c, _ = corpus
    counts = Counter(l for step in range(4000) for l in sample_languages(sorted(c.languages), {"en": 0.75, "it": 0.25}, 1, 0, step))
    assert abs(counts["en"] / 4000 - 0.75) < 0.03
    assert [sample_languages(["en", "it"], {"en": 0.75, "it": 0.25}, 1, 0, s) for s in range(20)] != \
        [sample_languages(["en", "it"], {"en": 0.75, "it": 0.25}, 1, 1, s) for s in range(20)]  # another seed, other draws


def test_eval_batches_cover_every_cut_once(corpus):
    c, tok = corpus
    cuts = c.cuts("it", "test")
    ids = [i for b in eval_batches(cuts, tok, "it", max_duration=8.0) for i in b.cut_ids]
    assert sorted(ids) == sorted(cut.id for cut in cuts)
    assert ids == [i for b in eval_batches(cuts, tok, "it", max_duration=8.0) for i in b.cut_ids]


def _mixed(c, tok, seed=3, weights=None, cache=None, max_duration=12.0):
    from asr_pathways.data.batches import MixedStream

    sources = {}
    for l in c.languages:
        cuts = c.cuts(l, "train")
        sources[l] = (cuts, cache.split(l, "train", cuts) if cache is not None else None)
    return MixedStream(sources, tok, max_duration, weights, seed=seed, num_buckets=3, sort_window=16)


def test_mixed_stream_epoch_mixes_languages_and_respects_caps(corpus):
    c, tok = corpus
    m = _mixed(c, tok)
    plan = m.plan(0)
    items = [it for b in plan for it in b]
    # with default weights (by cut count) one epoch is every cut of every language once
    want = sorted((l, i) for l in c.languages for i in range(len(c.cuts(l, "train"))))
    assert sorted(items) == want
    assert any(len({l for l, _ in b}) > 1 for b in plan)  # batches mix languages
    for b in plan:
        durs = [m.durations[l][i] for l, i in b]
        assert len(b) == 1 or len(b) * max(durs) <= 12.0
    batch = m.next()
    assert batch.language == "mixed" and len(batch.languages) == len(batch.cut_ids)
    for k, n in enumerate(batch.token_lens.tolist()):
        assert tok.decode(batch.tokens[k, :n].tolist()) == batch.texts[k]


def test_mixed_stream_token_sorting_reduces_label_padding(corpus):
    c, tok = corpus
    m = _mixed(c, tok)

    def padding(plan):
        pad = total = 0
        for b in plan:
            n = [m._token_count(l, i) for l, i in b]
            pad += len(n) * max(n) - sum(n)
            total += len(n) * max(n)
        return pad / total

    unsorted = _mixed(c, tok)
    unsorted.sort_by_tokens = False
    assert padding(m.plan(0)) < padding(unsorted.plan(0))


def test_mixed_stream_weights_and_exact_resume(corpus):
    c, tok = corpus
    m = _mixed(c, tok, weights={"en": 1.0, "it": 1.0})
    items = [it for b in m.plan(0) for it in b]
    counts = Counter(l for l, _ in items)
    assert abs(counts["en"] - counts["it"]) <= 1  # equal weights: equal draws, 'it' cycles its cuts
    a = _mixed(c, tok)
    for _ in range(len(a.plan(0)) + 2):  # cross an epoch boundary
        a.next_items()
    state = a.state_dict()
    want = [a.next().cut_ids for _ in range(5)]
    b = _mixed(c, tok)
    b.load_state_dict(state)
    assert [b.next().cut_ids for _ in range(5)] == want
    with pytest.raises(ValueError):
        b.load_state_dict(state | {"num_cuts": {"en": 1}})


def test_feature_cache_matches_inline_fbank_and_invalidates(corpus, tmp_path):
    from asr_pathways.data.features import FeatureCache

    c, tok = corpus
    cache = FeatureCache(c.path, root=tmp_path / "feats", progress=False)
    cuts = c.cuts("it", "train")
    split = cache.split("it", "train", cuts)
    for cut in list(cuts)[:3]:
        assert torch.equal(split.get(cut.id), compute_fbank(cut.load_audio()[0]))
    # the same batches whether features come from the cache or are computed inline
    cached = _mixed(c, tok, cache=cache)
    inline = _mixed(c, tok)
    for _ in range(3):
        x, y = cached.next(), inline.next()
        assert x.cut_ids == y.cut_ids and torch.equal(x.features, y.features)
    # monolingual streams too (their batches are copied straight out of the cache's view)
    mono_cached = LanguageStream(cuts, tok, "it", 12.0, seed=5, num_buckets=3, features=split)
    mono_inline = LanguageStream(cuts, tok, "it", 12.0, seed=5, num_buckets=3)
    for _ in range(3):
        x, y = mono_cached.next(), mono_inline.next()
        assert x.cut_ids == y.cut_ids and torch.equal(x.features, y.features) and torch.equal(x.feature_lens, y.feature_lens)
    # a view is the cache's own frames (no copy); get() is a copy the caller may change
    cut = list(cuts)[0]
    view, copy = split.view(cut.id), split.get(cut.id)
    assert np.shares_memory(view, split.frames) and not view.flags.writeable
    copy.add_(1.0)
    assert torch.equal(torch.from_numpy(np.array(view)), split.get(cut.id)) and not torch.equal(copy, split.get(cut.id))
    folder = cache.folder("it", "train")
    assert (folder / "train.npy").is_file() and (folder / "train.json").is_file()
    # a second cache object reuses the files (no rebuild: the memory map is of the same file)
    again = FeatureCache(c.path, root=tmp_path / "feats", progress=False).split("it", "train", cuts)
    assert again.path == split.path
    # other feature settings -> another key and folder
    import asr_pathways.data.features as F

    old = dict(F.FBANK_SETTINGS)
    try:
        F.FBANK_SETTINGS["num_mel_bins"] = 40
        assert cache.folder("it", "train") != folder
    finally:
        F.FBANK_SETTINGS.clear()
        F.FBANK_SETTINGS.update(old)
    # another manifest content -> another key
    assert F.settings_key(F.FBANK_SETTINGS, b"a") != F.settings_key(F.FBANK_SETTINGS, b"b")


def test_more_duration_buckets_pad_fewer_frames(corpus):
    """``num_buckets`` (train config) narrows each batch's duration range: fewer padded frames, every cut still once."""
    c, tok = corpus
    sources = {l: (c.cuts(l, "train"), None) for l in c.languages}

    def frame_fill(num_buckets: int) -> tuple[float, list]:
        m = MixedStream(sources, tok, max_duration=12.0, seed=3, num_buckets=num_buckets)
        plan = m.plan(0)
        valid = padded = 0.0
        for b in plan:
            durs = [m.durations[l][i] for l, i in b]
            valid += sum(durs)
            padded += len(durs) * max(durs)
        return valid / padded, sorted(it for b in plan for it in b)

    fill_few, items_few = frame_fill(1)
    fill_many, items_many = frame_fill(20)
    assert items_few == items_many  # the same epoch, only grouped differently
    assert fill_many > fill_few
    streams, _, _ = language_streams(c, c.languages, tok, 12.0, seed=0, num_buckets=7)
    assert all(s.num_buckets == min(7, len(s.cuts)) for s in streams.values())
