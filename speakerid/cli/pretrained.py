"""model-card: the model shipped in the package, and where your speaker store is."""

from __future__ import annotations

from speakerid.cli._common import print_json


def register(sub) -> None:
    p = sub.add_parser("model-card", help="show the card of the model shipped with speakerid (what it was trained "
                                          "on, its measured figures, its limits) and where your speaker store is",
                       description="Print MODEL_CARD.md of the shipped model, then the speaker store that commands "
                                   "given no --model-dir use ($SPEAKERID_HOME, else the user data folder).")
    p.add_argument("--json", action="store_true",
                   help="print the model's name, build, recipe hash, development figures (value and 95 %% interval "
                        "per condition), store folder and enrolled speakers as JSON")
    p.set_defaults(handler=_model_card)


def _model_card(args):
    from speakerid import pretrained

    store = pretrained.store_model_dir()
    speakers = sorted(pretrained._enrolled(store)) if store.is_dir() else []
    if args.json:
        info = pretrained.shipped_info()
        print_json({"model": info.get("name"), "build": info.get("build"), "recipe_sha256": info.get("recipe_sha256"),
                    "speakerid_version": info.get("speakerid_version"), "shipped_dir": str(pretrained.shipped_dir()),
                    "store": str(store), "speakers": speakers, "dev_suite": info.get("dev_suite")})
        return 0
    print(pretrained.model_card().rstrip("\n"))
    print(f"\nYour speaker store: {store} ({len(speakers)} speaker(s) enrolled; set {pretrained.STORE_ENV} to move it)")
    return 0
