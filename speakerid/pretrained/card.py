"""The figures table of the shipped model's card, rendered from the figures stored in the model itself."""

from __future__ import annotations

__all__ = ["BEGIN", "END", "figures_table", "card_with_figures"]

BEGIN, END = "<!-- figures:begin (written by recipes/pretrained/build.py) -->", "<!-- figures:end -->"
#: The development suite's order of conditions (bench/dev_suite.py); any other condition follows, sorted.
_ORDER = ("clean", "test-2s", "noise-0", "noise-5", "noise-10", "music-5", "babble-5", "reverb", "reverb-sim",
          "telephone-16k", "telephone-8k", "cross-impostors", "test-1s", "digits-8k")
_ROWS = (("eer", "EER %", 100.0, 2), ("min_dcf@0.01", "minDCF 0.01", 1.0, 3), ("act_dcf@0.01", "actDCF 0.01", 1.0, 3),
         ("cllr", "Cllr", 1.0, 3), ("nontarget_accept", "impostors LLR >= 0, %", 100.0, 2))


def _cell(figure: dict, scale: float, digits: int) -> str:
    return (f"{figure['value'] * scale:.{digits}f} [{figure['low'] * scale:.{digits}f}, "
            f"{figure['high'] * scale:.{digits}f}]")


def figures_table(info: dict) -> str:
    """A Markdown table of ``info["dev_suite"]["conditions"]`` (the development suite's figures of the shipped
    model: value and 95 % interval per condition), one row per condition."""
    conditions = info["dev_suite"]["conditions"]
    head = "| condition | speakers | target / non-target trials | " + " | ".join(r[1] for r in _ROWS) + " |"
    lines = [head, "|" + "---|" * (3 + len(_ROWS))]
    order = [c for c in _ORDER if c in conditions] + sorted(set(conditions) - set(_ORDER))
    for name in order:
        c = conditions[name]
        cells = [_cell(c[key], scale, digits) for key, _, scale, digits in _ROWS]
        lines.append(f"| {name} | {c['n_groups']} | {c['n_target']} / {c['n_nontarget']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def card_with_figures(card: str, info: dict) -> str:
    """``card`` with the text between :data:`BEGIN` and :data:`END` replaced by :func:`figures_table`."""
    start, end = card.index(BEGIN) + len(BEGIN), card.index(END)
    return card[:start] + "\n" + figures_table(info) + "\n" + card[end:]
