"""``speakerid protocol``: enrollment models and target / non-target / impostor trials from a labelled manifest."""

from __future__ import annotations

import re

from speakerid.cli._common import (
    add_json,
    finite_float,
    jobs_count,
    non_negative_int,
    positive_int,
    print_json,
    seed_value,
)
from speakerid.cli.degrade import add_bank_options, bank_from_options

__all__ = ["register"]

# build_protocol's parameter names -> this command's options, so that errors name what the user typed.
_OPTION_NAMES = {"enroll_utts": "--enroll-utts", "enroll_seconds": "--enroll-seconds", "n_enroll_sets": "--enroll-sets",
                 "test_duration_s": "--test-duration", "impostors_per_test": "--impostors-per-test",
                 "sample_rate": "--sample-rate", "name": "--name",
                 "min_test_speech_s": "--min-test-speech"}
_OPTION_PATTERN = re.compile(r"^(" + "|".join(_OPTION_NAMES) + r")\b")


#: ``speakerid.evaluation.protocols.MIN_TEST_SPEECH_S``, written here so that building the parser does not import
#: the protocol builder (60 ms of every command's start; tests/cli check that the two agree).
MIN_TEST_SPEECH_S = 0.5


def register(sub) -> None:
    p = sub.add_parser("protocol", help="build an evaluation protocol (enroll + trials manifests) from a labelled "
                                        "manifest, enrollment and test from separate recordings",
                       description="Write DIR/NAME-enroll.csv and DIR/NAME-trials.csv from a speaker,path[,recording] "
                                   "manifest: per speaker enrollment models and tests from other recordings (never "
                                   "two pieces of one recording in a target trial, as in the NIST SRE and VoxCeleb "
                                   "protocols), non-target trials against other speakers' models, and optional "
                                   "impostors from another corpus. Crops and degraded audio are written as WAVs "
                                   "under DIR. The same inputs and --seed write the same bytes.")
    p.add_argument("--manifest", required=True, metavar="CSV",
                   help="speaker,path[,recording] manifest (files sharing a recording are one session)")
    p.add_argument("--out-dir", required=True, metavar="DIR", help="output folder")
    p.add_argument("--name", default="protocol", help="file-name prefix of the outputs (default protocol)")
    enroll = p.add_mutually_exclusive_group()
    enroll.add_argument("--enroll-utts", type=positive_int, default=3, metavar="N",
                        help="recordings per enrollment model (default 3)")
    enroll.add_argument("--enroll-seconds", type=finite_float, default=None, metavar="T",
                        help="instead: seconds of audio per enrollment model, the last recording cropped")
    p.add_argument("--enroll-sets", type=positive_int, default=1, metavar="K",
                   help="enrollment models per speaker, ids SPEAKER_e1..SPEAKER_eK when K > 1 (default 1)")
    p.add_argument("--test-duration", type=finite_float, default=None, metavar="S",
                   help="tests are seeded S-second crops with speech (default: whole files)")
    p.add_argument("--tests-per-speaker", type=positive_int, default=None, metavar="N",
                   help="at most N tests per speaker (default all)")
    p.add_argument("--nontarget-per-test", type=non_negative_int, default=None, metavar="K",
                   help="other speakers' models each test is tried against (default all)")
    p.add_argument("--impostors", default=None, metavar="CSV",
                   help="speaker,path manifest of other speakers: non-target tests against the models")
    p.add_argument("--impostors-per-test", type=positive_int, default=None, metavar="K",
                   help="models each impostor file is tried against (default all)")
    p.add_argument("--exclude", default=None, metavar="TRAIN.csv",
                   help="training manifest (or a text list of ids): its speakers are left out")
    p.add_argument("--enroll-condition", default=None, metavar="SPEC", help="degradation of the enrollment audio")
    p.add_argument("--test-condition", default=None, metavar="SPEC", help="degradation of the test audio")
    add_bank_options(p)
    p.add_argument("--min-test-speech", type=finite_float, default=MIN_TEST_SPEECH_S, metavar="S",
                   help=f"seconds of detected speech a test crop needs, capped at half the crop (default "
                        f"{MIN_TEST_SPEECH_S:g}; 0 keeps any crop with sound, e.g. for one-word clips)")
    p.add_argument("--sample-rate", type=positive_int, default=None, metavar="HZ",
                   help="rate of the audio written (default: each file's own)")
    p.add_argument("--seed", type=seed_value, default=0, help="random seed (default 0)")
    p.add_argument("--jobs", "-j", type=jobs_count, default=1, metavar="N",
                   help="parallel audio workers (default 1; -1 = all cores)")
    add_json(p)
    p.set_defaults(handler=_protocol)


def _protocol(args):
    from speakerid._utils.validation import shorten
    from speakerid.degrade import needed_kinds
    from speakerid.evaluation.protocols import build_protocol
    from speakerid.exceptions import ParameterError

    needed = {}
    for option, spec in (("--enroll-condition", args.enroll_condition), ("--test-condition", args.test_condition)):
        for kind in (needed_kinds(spec) if spec else ()):
            needed.setdefault(kind, option)
    text = " and ".join(sorted(set(needed.values()))) or "the protocol"
    bank = bank_from_options(args, tuple(needed), text)
    try:
        result = build_protocol(args.manifest, args.out_dir, name=args.name, enroll_utts=args.enroll_utts,
                                enroll_seconds=args.enroll_seconds, n_enroll_sets=args.enroll_sets,
                                test_duration_s=args.test_duration, tests_per_speaker=args.tests_per_speaker,
                                nontarget_per_test=args.nontarget_per_test, impostors=args.impostors,
                                impostors_per_test=args.impostors_per_test, exclude=args.exclude,
                                enroll_condition=args.enroll_condition, test_condition=args.test_condition,
                                bank=bank, sample_rate=args.sample_rate, min_test_speech_s=args.min_test_speech,
                                seed=args.seed, n_jobs=args.jobs)
    except ParameterError as exc:
        raise ParameterError(_OPTION_PATTERN.sub(lambda m: _OPTION_NAMES[m.group(1)], str(exc))) from None
    if args.json:
        print_json({"enroll_csv": str(result.enroll_csv), "trials_csv": str(result.trials_csv),
                    "n_speakers": result.n_speakers, "n_models": result.n_models, "n_target": result.n_target,
                    "n_nontarget": result.n_nontarget, "n_impostor_trials": result.n_impostor_trials,
                    "skipped": result.skipped, "excluded": result.excluded, "skipped_files": result.skipped_files})
        return
    print(f"wrote {result.enroll_csv} ({result.n_models} models of {result.n_speakers} speakers)")
    impostors = f", {result.n_impostor_trials} of them impostor trials" if result.n_impostor_trials else ""
    print(f"wrote {result.trials_csv} ({result.n_target} target and {result.n_nontarget} non-target "
          f"trials{impostors})")
    for reason, speakers in result.skipped.items():
        print(f"skipped {len(speakers)} speaker(s), {reason}: {shorten(speakers)}")
    for reason, files in result.skipped_files.items():
        print(f"skipped {len(files)} test file(s), {reason}: {shorten(files)}")
    if result.excluded:
        print(f"excluded {len(result.excluded)} training speaker(s): {shorten(result.excluded)}")
