"""``speakerid synth``: write a synthetic speaker-verification corpus (WAVs plus enroll/trials/background CSVs)."""

from __future__ import annotations

import re
import time

from speakerid.exceptions import ParameterError, SpeakerIDError

__all__ = ["register"]

# make_corpus's parameter names -> this command's options, so that errors name what the user typed.
_OPTION_NAMES = {
    "n_background_utterances": "--background-utterances",
    "n_background": "--background",
    "n_speakers": "--speakers",
    "n_utterances": "--utterances",
    "enroll_per_speaker": "--enroll-per-speaker",
    "nontarget_per_test": "--nontarget-per-test",
    "sample_rate": "--sample-rate",
    "duration_s": "--duration",
    "snr_db": "--snr",
    "seed": "--seed",
    "out_dir": "--out",
}
_OPTION_PATTERN = re.compile(r"\b(" + "|".join(_OPTION_NAMES) + r")\b")


def register(sub) -> None:
    p = sub.add_parser("synth", help="generate a synthetic corpus with enroll/trials/background manifests",
                       description="Write WAV files of synthetic speakers (each recording its own content, "
                                   "channel, noise and level) and the manifests enroll.csv, trials.csv and "
                                   "background.csv (background speakers are disjoint from the evaluated ones). "
                                   "A folder that already holds the same corpus is left as it is.")
    p.add_argument("--out", default="data/synth", metavar="DIR", help="output folder (default data/synth)")
    p.add_argument("--speakers", type=int, default=30, metavar="N", help="evaluated speakers, >= 2 (default 30)")
    p.add_argument("--utterances", type=int, default=10, metavar="N",
                   help="recordings per evaluated speaker, more than --enroll-per-speaker (default 10)")
    p.add_argument("--enroll-per-speaker", type=int, default=3, metavar="N",
                   help="of those, recordings used for enrollment; the rest are test trials (default 3)")
    p.add_argument("--background", type=int, default=None, metavar="N",
                   help="background (UBM) speakers (default: as many as --speakers; 0 for none)")
    p.add_argument("--background-utterances", type=int, default=5, metavar="N",
                   help="recordings per background speaker (default 5)")
    p.add_argument("--nontarget-per-test", type=int, default=None, metavar="K",
                   help="impostor claims per test recording (default: every other evaluated speaker)")
    p.add_argument("--sample-rate", type=int, default=16000, metavar="HZ", help="8000 .. 48000 (default 16000)")
    p.add_argument("--duration", type=float, nargs="+", default=[2.0, 4.0], metavar="S",
                   help="recording length in seconds, or MIN MAX to draw it per recording (default 2 4)")
    noise = p.add_mutually_exclusive_group()
    noise.add_argument("--snr", type=float, nargs="+", default=[5.0, 30.0], metavar="DB",
                       help="signal-to-noise ratio in dB, or MIN MAX (default 5 30)")
    noise.add_argument("--clean", action="store_true", help="add no background noise")
    p.add_argument("--no-channel", action="store_true", help="no random recording channel (band limits, EQ)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same bytes (default 0)")
    p.add_argument("--force", action="store_true", help="regenerate even when the folder holds this corpus already")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary")
    p.set_defaults(handler=_synth)


def _range(values, option):
    if len(values) > 2:
        raise ParameterError(f"{option} takes one value or MIN MAX, got {len(values)} values")
    return values[0] if len(values) == 1 else tuple(values)


def _synth(args):
    from speakerid.data.synth import make_corpus

    options = dict(n_background=args.background, n_background_utterances=args.background_utterances,
                   enroll_per_speaker=args.enroll_per_speaker, sample_rate=args.sample_rate, seed=args.seed,
                   duration_s=_range(args.duration, "--duration"),
                   snr_db=None if args.clean else _range(args.snr, "--snr"), channel=not args.no_channel,
                   nontarget_per_test=args.nontarget_per_test)
    start = time.perf_counter()
    try:
        corpus = make_corpus(args.out, args.speakers, args.utterances, show_progress=False if args.quiet else None,
                             reuse=not args.force, **options)
    except ParameterError as exc:
        raise ParameterError(_OPTION_PATTERN.sub(lambda m: _OPTION_NAMES[m.group(1)], str(exc))) from None
    except OSError as exc:
        raise SpeakerIDError(f"cannot write the corpus to {args.out}: {exc.strerror or exc}") from None
    if args.quiet:
        return 0
    if corpus.reused:
        print(f"corpus up to date (use --force to regenerate): {corpus.folder}")
    else:
        print(f"wrote synthetic corpus to {corpus.folder} in {time.perf_counter() - start:.1f} s")
    n_nontarget = corpus.n_trials - corpus.n_target_trials
    print(f"  speakers:    {len(corpus.speakers)} evaluated, {len(corpus.background_speakers)} background "
          "(disjoint)")
    print(f"  files:       {corpus.n_files} ({corpus.total_duration_s / 60:.1f} min of audio at "
          f"{corpus.sample_rate} Hz)")
    print(f"  trials:      {corpus.n_trials} ({corpus.n_target_trials} target, {n_nontarget} nontarget)")
    print(f"  manifests:   {corpus.enroll_csv}")
    print(f"               {corpus.trials_csv}")
    print(f"               {corpus.background_csv}")
    return 0
