"""`asr-pathways corpus synth | text-stats | import-mls | import-dir | card`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError


def _langs(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="corpus_command", metavar="ACTION")
    from ..options import HelpFormatter as fmt  # each default shown once

    s = sub.add_parser("synth", help="synthesise a multilingual corpus with espeak-ng", formatter_class=fmt,
                       description="Synthesise an MLS-shaped corpus with espeak-ng (in-process where libespeak-ng loads, the same "
                       "samples as the espeak-ng program; ASR_PATHWAYS_ESPEAK=program runs the program). Deterministic from --seed; "
                       "rerun the same command to resume an interrupted build. --hours sizes the TRAIN split per language; "
                       "dev and test have fixed utterance counts and speakers (voice variants) disjoint from train. "
                       "docs/corpus.md explains the defaults.")
    s.add_argument("--out", required=True, type=Path, help="corpus folder to create or resume")
    t = sub.add_parser("text-stats", help="open-vocabulary statistics of a synth corpus from its text alone, without building it",
                       formatter_class=fmt,
                       description="Generate the sentences `corpus synth` with the same options would use and print, per language, "
                       "the share of test words (and of test slot words, outside the sentence frames) never seen in training, "
                       "and of slot words seen fewer than 5 times. The training split's length in sentences is estimated by "
                       "synthesising the first --calibrate-utts training utterances of each language (seconds per character).")
    for q in (s, t):
        q.add_argument("--languages", default="en,fr,it,nl", help="espeak-ng language codes, comma separated (e.g. en,fr,it,nl,de,es,pt,pl)")
        q.add_argument("--hours", default="en=8,fr=4,nl=4,it=2", help="training hours: LANG=H,... or one number for every language (others default to 1)")
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--jobs", type=int, default=0, help="parallel syntheses (espeak-ng workers or processes) (0: every core)")
        q.add_argument("--test-utts", type=int, default=500, help="test utterances per language")
        q.add_argument("--dev-utts", type=int, default=None, help="dev utterances per language (default: half of --test-utts)")
        q.add_argument("--train-speakers", type=int, default=120, help="training speakers per language")
        q.add_argument("--eval-speakers", type=int, default=20, help="dev and test speakers per language (each)")
        q.add_argument("--lexicon-size", type=int, default=4000,
                       help="content words per language the sentence generator fills its frames with (wordfreq's most frequent, filtered)")
        q.add_argument("--word-weights", choices=["real", "flat"], default="real",
                       help="how slot words are drawn from the lexicon: real (wordfreq's relative frequencies) or flat "
                       "(1/(rank+20)^0.7: a longer tail, many more test words unseen in training; the weighting of older corpora)")
        q.add_argument("--text-dir", type=Path, default=None, help="folder with LANG.txt (one sentence per line) to use instead of the generator for that language")
        q.add_argument("--skip-bad", action="store_true", help="skip bad items (counted in the card) instead of stopping")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--calibrate-utts", type=int, default=60, help="training utterances per language synthesised to estimate durations")
    t.add_argument("--json", action="store_true", help="print JSON instead of a table")

    m = sub.add_parser("import-mls", help="import Multilingual LibriSpeech (FLAC or Opus) through lhotse", formatter_class=fmt,
                       description="Import an MLS tree: DIR holds mls_{language} or mls_{language}_opus folders, each with "
                       "train/dev/test/transcripts.txt and audio/SPEAKER/BOOK/SPEAKER_BOOK_UTT.flac|.opus (and metainfo.txt). "
                       "Opus audio is resampled to 16 kHz when loaded; manifests point at the original files.")
    m.add_argument("dir", type=Path, help="MLS root folder")
    m.add_argument("--out", required=True, type=Path, help="corpus folder to write")
    m.add_argument("--languages", default=None, help="codes to import (en,de,nl,fr,es,it,pt,pl); default: every folder found")
    g = m.add_mutually_exclusive_group()
    g.add_argument("--opus", dest="format", action="store_const", const="opus", help="use the mls_*_opus folders")
    g.add_argument("--flac", dest="format", action="store_const", const="flac", help="use the FLAC folders")
    m.set_defaults(format="auto")
    m.add_argument("--jobs", type=int, default=1, help="jobs for lhotse's recording scan")
    m.add_argument("--skip-bad", action="store_true", help="skip bad items (counted in the card) instead of stopping")

    d = sub.add_parser("import-dir", help="import a folder of audio files plus id<TAB>text transcripts", formatter_class=fmt,
                       description="Import audio files (ID.flac/.wav/.opus/.ogg anywhere under --audio-dir, 16 kHz mono) with one "
                       "`ID<TAB>text` transcript file per language. The speaker is the part of ID before the first '_'. "
                       "--split auto assigns whole speakers by crc32(speaker) %% 10: 8 -> dev, 9 -> test, else train "
                       "(with few speakers a split may be empty); run once per split to fill train/dev/test from separate files.")
    d.add_argument("--audio-dir", required=True, type=Path)
    d.add_argument("--transcripts", required=True, help="LANG=FILE[,LANG=FILE...] (LANG: ISO 639-1 code)")
    d.add_argument("--out", required=True, type=Path, help="corpus folder to write (other splits already there are kept)")
    d.add_argument("--split", default="train", choices=["train", "dev", "test", "auto"])
    d.add_argument("--resample", action="store_true", help="accept audio that is not 16 kHz and resample it when loaded")
    d.add_argument("--skip-bad", action="store_true", help="skip bad items (counted in the card) instead of stopping")

    c = sub.add_parser("card", help="print (or recompute) a corpus card", formatter_class=fmt)
    c.add_argument("dir", type=Path, help="corpus folder")
    c.add_argument("--json", action="store_true", help="print card.json instead of card.md")
    c.add_argument("--recompute", action="store_true", help="recompute the card from the manifests")
    p.set_defaults(_corpus_parser=p)


def output_folder(args: argparse.Namespace) -> Path | None:
    """The folder this action writes (locked while it runs): the corpus, or none for a read."""
    cmd = getattr(args, "corpus_command", None)
    if cmd in ("synth", "import-mls", "import-dir"):
        return Path(args.out)
    if cmd == "card" and args.recompute:
        return Path(args.dir)
    return None


def run(args: argparse.Namespace) -> int:
    import json

    cmd = getattr(args, "corpus_command", None)
    if cmd is None:
        args._corpus_parser.print_help()
        return 2
    if cmd in ("synth", "text-stats"):
        from .corpus import card_markdown
        from .synth import SynthConfig, build_corpus, parse_hours, text_statistics

        langs = _langs(args.languages)
        cfg = SynthConfig(
            out=getattr(args, "out", None), languages=langs, hours=parse_hours(args.hours, langs), seed=args.seed, jobs=args.jobs,
            test_utts=args.test_utts, dev_utts=args.dev_utts, text_dir=args.text_dir, skip_bad=args.skip_bad,
            train_speakers=args.train_speakers, eval_speakers=args.eval_speakers, lexicon_size=args.lexicon_size,
            word_weights=args.word_weights, progress=not getattr(args, "no_progress", True),
        )
        if cmd == "synth":
            print(card_markdown(build_corpus(cfg, command=getattr(args, "command_line", None))))
            return 0
        stats = text_statistics(cfg, args.calibrate_utts)
        if args.json:
            print(json.dumps(stats, indent=2))
            return 0
        pct = lambda x: "—" if x is None else f"{100 * x:.1f}%"  # noqa: E731
        print(f"lexicon {cfg.lexicon_size}, {cfg.word_weights} word weights, seed {cfg.seed}; test words never seen in training "
              "(slot: outside the sentence frames; rare: seen fewer than 5 times)\n")
        print("| language | train hours | train sentences (est.) | train vocabulary | unseen test words | unseen test slot words | rare test slot words |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for lang, st in stats.items():
            te = st["test"]
            print(f"| {lang} | {st['train_hours']:g} | {st['train_utts']} | {st['train_vocabulary']} | {pct(te['unseen_word_share'])} | "
                  f"{pct(te['unseen_slot_share'])} | {pct(te['rare_slot_share'])} |")
        return 0
    if cmd == "import-mls":
        from .corpus import card_markdown
        from .mls import import_mls

        card = import_mls(args.dir, args.out, _langs(args.languages) if args.languages else None, args.format, args.skip_bad, args.jobs,
                          command=getattr(args, "command_line", None))
        print(card_markdown(card))
        return 0
    if cmd == "import-dir":
        from .corpus import card_markdown
        from .mls import import_dir

        tr = {}
        for part in _langs(args.transcripts):
            lang, sep, f = part.partition("=")
            if not sep or not lang or not f:
                raise InputError(f"bad --transcripts entry {part!r}", field="transcripts", expected="LANG=FILE[,LANG=FILE...]")
            tr[lang.strip()] = Path(f.strip())
        print(card_markdown(import_dir(args.audio_dir, tr, args.out, args.split, args.skip_bad, args.resample,
                                       command=getattr(args, "command_line", None))))
        return 0
    if cmd == "card":
        from .corpus import Corpus, card_markdown, write_card

        corpus = Corpus(args.dir)
        card = write_card(args.dir) if args.recompute else corpus.card
        print(json.dumps(card, indent=2) if args.json else card_markdown(card))
        return 0
    raise InputError(f"unknown corpus action {cmd!r}", expected="synth, import-mls, import-dir or card")
