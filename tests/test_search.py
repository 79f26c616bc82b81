"""Search normalisation and the FTS5 query it produces."""

from __future__ import annotations

import pytest

from app.core.search import (
    MAX_QUERY_CHARS,
    QueryTooLong,
    fold,
    fts_expression,
    search_products,
    tokens,
)


def test_fold_strips_accents_and_case():
    assert fold("Vélo ÉLAN Chaussures") == "velo elan chaussures"


def test_tokens_keep_only_letters_and_digits():
    assert tokens('"velo" OR NEAR(tente*') == ["velo", "or", "near", "tente"]


def test_tokens_drop_single_letters_unless_alone():
    assert tokens("t-shirt") == ["shirt"]
    assert tokens("v") == ["v"]


def test_tokens_refuse_overlong_queries():
    with pytest.raises(QueryTooLong):
        tokens("a" * (MAX_QUERY_CHARS + 1))


def test_fts_expression_quotes_every_word_as_prefix():
    assert fts_expression(["velo", "route"]) == '"velo"* AND "route"*'


def _names(store_db, pks):
    marks = ",".join("?" * len(pks))
    return [
        r[0]
        for r in store_db.execute(
            f"SELECT name_fr FROM products WHERE pk IN ({marks})",  # noqa: S608
            pks,
        )
    ]


def test_velo_finds_velo_with_accent(store_db):
    names = _names(store_db, search_products(store_db, "velo"))
    assert names and all("vélo" in n.lower() or "vtt" in n.lower() for n in names[:3])
    assert any("Vélo" in n for n in names)


def test_uppercase_finds_plural(store_db):
    names = _names(store_db, search_products(store_db, "CHAUSSURE"))
    assert names and all("chaussures" in n.lower() for n in names)


@pytest.mark.parametrize("query", ['"', "*", "OR", "NEAR(", "velo OR", "'; DROP TABLE x; --", ""])
def test_fts_syntax_is_never_parsed(store_db, query):
    # Must not raise: anything typed is searched as words.
    assert isinstance(search_products(store_db, query), list)


def test_empty_and_blank_queries_find_nothing(store_db):
    assert search_products(store_db, "") == []
    assert search_products(store_db, "   ") == []
