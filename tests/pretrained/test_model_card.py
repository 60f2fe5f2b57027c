"""The shipped model's card and header: the card's figures are the header's, the header's hashes are true."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from speakerid import pretrained
from speakerid.cli._common import ExitStatus
from speakerid.cli.main import main
from speakerid.pretrained.card import BEGIN, END, card_with_figures, figures_table
from speakerid.pretrained.pack import build_hash

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not (pretrained.SHIPPED_DIR / "fusion.json").is_file(),
                                reason="this checkout has no shipped model")


def test_the_cards_figures_are_the_shipped_headers():
    info = pretrained.shipped_info()
    card = pretrained.model_card()
    table = card[card.index(BEGIN) + len(BEGIN):card.index(END)].strip()
    assert table == figures_table(info)
    conditions = info["dev_suite"]["conditions"]
    assert {"clean", "test-2s", "noise-0", "telephone-8k", "cross-impostors", "test-1s"} <= set(conditions)
    for figures in conditions.values():        # every figure with its interval and its trial counts
        assert figures["eer"]["low"] <= figures["eer"]["value"] <= figures["eer"]["high"]
        assert figures["n_target"] > 0 and figures["n_nontarget"] > 0
    clean = conditions["clean"]
    assert f"| clean | {clean['n_groups']} | {clean['n_target']} / {clean['n_nontarget']} | " \
           f"{100 * clean['eer']['value']:.2f} [" in card


def test_card_rendering_replaces_only_the_marked_table():
    info = {"dev_suite": {"conditions": {"clean": {
        **{k: {"value": 0.1, "low": 0.05, "high": 0.2}
           for k in ("eer", "min_dcf@0.01", "act_dcf@0.01", "cllr", "nontarget_accept")},
        "n_groups": 4, "n_target": 10, "n_nontarget": 30}}}}
    card = f"# title\n{BEGIN}\nold table\n{END}\nafter\n"
    out = card_with_figures(card, info)
    assert out.startswith("# title\n") and out.endswith(f"{END}\nafter\n") and "old table" not in out
    assert "| clean | 4 | 10 / 30 | 10.00 [5.00, 20.00] | 0.100 [0.050, 0.200] |" in out


def test_model_card_command(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.STORE_ENV, str(tmp_path))
    assert main(["model-card"]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert out.startswith("# Model card: speakerid-default") and str(tmp_path / "models") in out
    assert main(["model-card", "--json"]) == ExitStatus.OK
    data = json.loads(capsys.readouterr().out)
    assert data["build"] == pretrained.shipped_info()["build"] and data["speakers"] == []
    assert not (tmp_path / "models").exists()             # showing the card makes no store


def test_the_shipped_files_fit_in_25_mb():
    total = sum(p.stat().st_size for p in pretrained.HERE.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert total <= 25_000_000


@pytest.mark.slow
def test_the_shipped_model_is_what_its_header_says():
    """The build hash is the content's, and the recipe in the repository is the one the model was built with."""
    info = pretrained.shipped_info()
    assert build_hash(pretrained.SHIPPED_DIR) == info["build"]
    recipe = REPO / "recipes" / "pretrained" / "recipe.json"
    if not recipe.is_file():
        pytest.skip("an installed package without the repository's recipes")
    assert hashlib.sha256(recipe.read_bytes()).hexdigest() == info["recipe_sha256"]
    assert json.loads(recipe.read_text())["name"] == info["name"]
