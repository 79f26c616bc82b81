"""axe-core in the browser tests: one helper shared by every screen checked (the
serious and critical findings, said with their rule, help text and first targets)."""

from __future__ import annotations


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now; fails when
    axe did not really look at the page (no rule passed)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    assert results.response["passes"], "axe-core looked at nothing"
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def assert_axe_clean(page, label: str) -> None:
    """axe-core finds nothing serious or critical on the screen named ``label``."""
    serious = serious_violations(page)
    assert serious == [], (label, serious)
