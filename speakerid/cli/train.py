"""train: one command from a background manifest to the fused, calibrated default system."""

from __future__ import annotations

import sys

from speakerid.cli._common import add_model_dir, add_workers, print_json, seed_value, show_warnings


def register(sub) -> None:
    from speakerid.data.dev_trials import DEV_SHARE
    from speakerid.scoring.systems import DEFAULT_P_TARGET, DEFAULT_SYSTEMS, SYSTEMS

    p = sub.add_parser("train", help="train the default system: several systems, fused and calibrated on held-out "
                                     "background speakers (scores become log-likelihood ratios)",
                       description="Split the background speakers (seeded) into training and development "
                                   "speakers, train each system on the training speakers, score development trials "
                                   "(full length, 2-s crops, 5-dB noise, at the model's rate), learn a "
                                   "prior-weighted logistic-regression fusion and calibration, store it with the "
                                   "development figures in the model directory and print them.")
    p.add_argument("--manifest", required=True, metavar="CSV", help="speaker,path manifest of background audio")
    add_model_dir(p)
    p.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS), metavar="LIST",
                   help=f"comma-separated systems among {', '.join(SYSTEMS)} (default {','.join(DEFAULT_SYSTEMS)})")
    p.add_argument("--sample-rate", type=int, default=16000, metavar="HZ",
                   help="the model's sample rate (default 16000; 8000 for telephone/8 kHz audio)")
    p.add_argument("--dev-share", type=float, default=DEV_SHARE, metavar="F",
                   help=f"share of the background speakers held out for development (default {DEV_SHARE})")
    p.add_argument("--p-target", type=float, default=DEFAULT_P_TARGET, metavar="P",
                   help=f"target prior of the stored decision threshold (default {DEFAULT_P_TARGET})")
    p.add_argument("--seed", type=seed_value, default=0, help="random seed (default 0)")
    p.add_argument("--no-narrowband", dest="narrowband", action="store_false",
                   help="do not train the 8 kHz narrowband systems that score telephone-band audio (by default a "
                        "wideband model trains them too, doubling the time; without them such audio is scored by "
                        "the wideband systems, with a warning)")
    p.add_argument("--noise-csv", default=None, metavar="CSV",
                   help="kind,path,licence list of noise, music, speech and room-response recordings (e.g. "
                        "../shared/protocols/noise.csv): the training files get degraded copies in real noise, "
                        "music, babble and rooms (Kaldi-style multi-condition training)")
    p.add_argument("--augment-copies", type=int, default=1, metavar="N",
                   help="degraded copies per training file with --noise-csv (default 1)")
    p.add_argument("--force", action="store_true",
                   help="retrain a model directory that has enrolled speakers (they are removed with the old systems)")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start over: by default a training into this directory that did not finish (Ctrl-C, an "
                        "error) is resumed with the stages it finished, when it had the same settings")
    add_workers(p, jobs=-1)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(handler=_train)


def _say(text: str) -> None:
    print(f"speakerid: {text}", file=sys.stderr, flush=True)


def _train(args):
    from speakerid._utils.progress import report_stages, stage_lines
    from speakerid.scoring.fused_train import train_default

    show_warnings()
    if args.augment_copies != 1 and args.noise_csv is None:
        from speakerid.exceptions import ParameterError

        raise ParameterError("--augment-copies needs --noise-csv (the recordings the copies are made with)")
    with report_stages():   # in a log: the trainers' stage and EM-iteration lines too
        result = train_default(args.manifest, args.model_dir, systems=args.systems, sample_rate=args.sample_rate,
                               n_jobs=args.jobs, dev_share=args.dev_share, p_target=args.p_target,
                               random_state=args.seed, say=_say, scheduler=args.scheduler, cache_dir=args.cache,
                               force=args.force, verbose=stage_lines, narrowband=args.narrowband,
                               noise_csv=args.noise_csv, augment_copies=args.augment_copies,
                               resume=args.resume, command=_command_line(args))
    if args.json:
        print_json(result)
        return
    print(f"trained {', '.join(result['systems'])} on {result['n_train_speakers']} background speakers; fusion "
          f"learned on {result['n_dev_speakers']} held-out ones -> {result['model_dir']}")
    print(dev_table(result["dev"], result.get("dev_trials")))
    if result.get("n_refused_files"):
        print(f"{result['n_refused_files']} background file(s) were left out: no usable speech (listed in "
              f"{result['model_dir']}/refused-background.csv)")
    if result.get("narrowband"):
        print(f"\nnarrowband systems (8 kHz, for telephone-band audio) -> {result['narrowband']['model_dir']}")
        print(dev_table(result["narrowband"]["dev"], result["narrowband"].get("dev_trials")))


def _command_line(args) -> str:
    """This command as typed, quoted for a POSIX shell (named by a directory it leaves unfinished)."""
    import shlex

    return "'" + shlex.join(["speakerid", *getattr(args, "argv", sys.argv[1:])]) + "'"


def dev_table(dev: dict, kind: str | None = None) -> str:
    """The development figures as text: one row per condition and system, each figure with its 95 % interval."""
    from speakerid.scoring.dev_sets import KINDS

    def cell(f, key, digits):
        if key not in f:
            return "-"
        low, high = f.get(f"{key}_ci", (f[key], f[key]))
        return f"{f[key]:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"

    head = f"development ({KINDS[kind]})" if kind in KINDS else "development (held-out background speakers)"
    columns = (("EER %", "eer_pct", 2), ("minDCF", "min_dcf", 3), ("actDCF", "act_dcf", 3), ("Cllr", "cllr", 3),
               ("minCllr", "min_cllr", 3))
    rows = [(f"{condition}: {name}", f"{f.get('n_speakers', '?')} / {f['n_target']} / {f['n_nontarget']}",
             *(cell(f, key, digits) for _, key, digits in columns))
            for condition, systems in dev.items() for name, f in systems.items()]
    widths = [max(len(r[i]) for r in rows + [("", "spk / tar / non") + tuple(c[0] for c in columns)])
              for i in range(len(columns) + 2)]
    widths[0] = max(widths[0], 30)
    lines = [head, "  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(
        zip(("", "spk / tar / non") + tuple(c[0] for c in columns), widths)))]
    lines += ["  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths))) for r in rows]
    lines.append("minDCF/actDCF at P_target = 0.01; single systems are not calibrated (no actDCF/Cllr); [95 % "
                 "interval] from 1000 bootstrap resamples of the development speakers (Bolle et al. 2004)")
    return "\n".join(lines)
