"""Tables and helpers of :mod:`app.demo.hub_year` (a year of a chain at its hub): the
names it draws from, and its bulk writes."""

from __future__ import annotations

import contextlib
import os
import random
import unicodedata
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from app.core import clock
from app.demo import seed as store_seed
from app.hub import database as hdb
from app.hub.database import Db

#: The password of every head-office user hub_year makes (a benchmark's, not a secret).
USER_PASSWORD = "annee-de-la-chaine-2026"

# (city, weight): a rough share of the chain's stores.
CITIES: tuple[tuple[str, int], ...] = (
    ("Paris", 60),
    ("Marseille", 22),
    ("Lyon", 22),
    ("Toulouse", 16),
    ("Nice", 12),
    ("Nantes", 12),
    ("Montpellier", 11),
    ("Strasbourg", 11),
    ("Bordeaux", 12),
    ("Lille", 12),
    ("Rennes", 9),
    ("Reims", 7),
    ("Toulon", 7),
    ("Saint-Étienne", 7),
    ("Le Havre", 6),
    ("Grenoble", 8),
    ("Dijon", 6),
    ("Angers", 6),
    ("Nîmes", 6),
    ("Villeurbanne", 5),
    ("Clermont-Ferrand", 6),
    ("Le Mans", 5),
    ("Aix-en-Provence", 6),
    ("Brest", 5),
    ("Tours", 5),
    ("Amiens", 5),
    ("Limoges", 5),
    ("Annecy", 5),
    ("Perpignan", 5),
    ("Boulogne-Billancourt", 4),
    ("Metz", 5),
    ("Besançon", 5),
    ("Orléans", 5),
    ("Saint-Denis", 4),
    ("Rouen", 5),
    ("Argenteuil", 3),
    ("Mulhouse", 4),
    ("Montreuil", 3),
    ("Caen", 5),
    ("Nancy", 5),
    ("Tourcoing", 3),
    ("Roubaix", 3),
    ("Nanterre", 3),
    ("Vitry-sur-Seine", 3),
    ("Avignon", 4),
    ("Créteil", 3),
    ("Poitiers", 4),
    ("Pau", 4),
    ("La Rochelle", 4),
    ("Calais", 3),
    ("Béziers", 3),
    ("Colmar", 3),
    ("Bourges", 3),
    ("Angoulême", 3),
    ("Chambéry", 3),
    ("Valence", 3),
    ("Quimper", 3),
    ("Troyes", 3),
    ("Lorient", 3),
    ("Niort", 3),
    ("Bayonne", 3),
    ("Évry", 2),
    ("Cergy", 2),
    ("Ajaccio", 2),
    ("Bastia", 2),
    ("Saint-Malo", 2),
    ("Vannes", 2),
    ("Arras", 2),
    ("Dunkerque", 3),
    ("Épinal", 2),
)
# Each city's département, for the postcodes of the stores' addresses.
DEPARTMENTS = {
    "Paris": "75",
    "Marseille": "13",
    "Lyon": "69",
    "Toulouse": "31",
    "Nice": "06",
    "Nantes": "44",
    "Montpellier": "34",
    "Strasbourg": "67",
    "Bordeaux": "33",
    "Lille": "59",
    "Rennes": "35",
    "Reims": "51",
    "Toulon": "83",
    "Saint-Étienne": "42",
    "Le Havre": "76",
    "Grenoble": "38",
    "Dijon": "21",
    "Angers": "49",
    "Nîmes": "30",
    "Villeurbanne": "69",
    "Clermont-Ferrand": "63",
    "Le Mans": "72",
    "Aix-en-Provence": "13",
    "Brest": "29",
    "Tours": "37",
    "Amiens": "80",
    "Limoges": "87",
    "Annecy": "74",
    "Perpignan": "66",
    "Boulogne-Billancourt": "92",
    "Metz": "57",
    "Besançon": "25",
    "Orléans": "45",
    "Saint-Denis": "93",
    "Rouen": "76",
    "Argenteuil": "95",
    "Mulhouse": "68",
    "Montreuil": "93",
    "Caen": "14",
    "Nancy": "54",
    "Tourcoing": "59",
    "Roubaix": "59",
    "Nanterre": "92",
    "Vitry-sur-Seine": "94",
    "Avignon": "84",
    "Créteil": "94",
    "Poitiers": "86",
    "Pau": "64",
    "La Rochelle": "17",
    "Calais": "62",
    "Béziers": "34",
    "Colmar": "68",
    "Bourges": "18",
    "Angoulême": "16",
    "Chambéry": "73",
    "Valence": "26",
    "Quimper": "29",
    "Troyes": "10",
    "Lorient": "56",
    "Niort": "79",
    "Bayonne": "64",
    "Évry": "91",
    "Cergy": "95",
    "Ajaccio": "2A",
    "Bastia": "2B",
    "Saint-Malo": "35",
    "Vannes": "56",
    "Arras": "62",
    "Dunkerque": "59",
    "Épinal": "88",
}
QUARTERS = (
    "Centre",
    "Gare",
    "Nord",
    "Sud",
    "Est",
    "Ouest",
    "Zone commerciale",
    "Les Halles",
    "Rive Gauche",
    "Rive Droite",
    "Vieux Port",
    "Université",
    "Hôpital",
    "Porte Sud",
    "Les Arcades",
    "République",
    "Beaulieu",
    "Les Pins",
)
STREETS = (
    "rue de la République",
    "avenue Jean-Jaurès",
    "rue Victor-Hugo",
    "boulevard Gambetta",
    "place de la Gare",
    "rue du Commerce",
    "avenue de la Libération",
    "rue Nationale",
    "centre commercial Les Quatre Vents",
    "rue des Halles",
    "cours Lafayette",
    "avenue du Général-Leclerc",
)
VERSIONS = (("2.4.1", 70), ("2.4.0", 20), ("2.3.7", 8), ("2.2.9", 2))
PARKED_REASONS = (
    ("unknown_sku", "Article inconnu du siège"),
    ("stock.movement", "Quantité refusée : négatif après mouvement"),
    ("order_state", "Commande déjà retirée"),
)
STAFF = ("Camille", "Hugo", "Léa", "Nathan", "Inès", "Jules", "Sarah", "Théo")
PROMO_THEMES = (
    ("Rentrée sportive", "Back to sport"),
    ("Semaine du running", "Running week"),
    ("Grand froid", "Big chill"),
    ("Soldes d'hiver", "Winter sale"),
    ("Soldes d'été", "Summer sale"),
    ("Fête des pères", "Father's Day"),
    ("Printemps du vélo", "Cycling spring"),
    ("Randonnée en famille", "Family hiking"),
    ("Glisse et montagne", "Snow and mountains"),
    ("Spécial piscine", "Swimming special"),
    ("Prix ronds", "Round prices"),
    ("Week-end malin", "Smart weekend"),
    ("Black Friday", "Black Friday"),
    ("Noël sportif", "Sporty Christmas"),
    ("Ouverture du magasin", "Store opening"),
    ("Déstockage", "Clearance"),
)

OPEN_STATES = ("placed", "preparing", "ready", "ready_partial", "partially_collected")
STOCK_VALUES = list(range(26))
STOCK_WEIGHTS = [12, 5, 5] + [78 / 23] * 23  # ~12 % at 0, ~10 % at 1-2, like the demo's
_BATCH = 20_000


@contextlib.contextmanager
def clock_at(moment: datetime) -> Iterator[None]:
    """The injected clock (``KIOSK_FAKE_NOW``) set to ``moment`` for this process while
    domain code runs "back then"; restored after."""
    before = os.environ.get("KIOSK_FAKE_NOW")
    os.environ["KIOSK_FAKE_NOW"] = clock.iso(moment)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("KIOSK_FAKE_NOW", None)
        else:
            os.environ["KIOSK_FAKE_NOW"] = before


def bulk(db: Db, table: str, columns: list[str], rows: list[Any]) -> None:
    """Insert many rows: one statement per batch on SQLite, one ``COPY`` on PostgreSQL
    (app.demo.seed's bulk path)."""
    if hdb.is_pg(db):
        if rows:
            store_seed._insert_rows(db, table, columns, rows)  # noqa: SLF001
        return
    for start in range(0, len(rows), _BATCH):
        store_seed._insert_rows(db, table, columns, rows[start : start + _BATCH])  # noqa: SLF001


def analyze(db: Db, *tables: str) -> None:
    """PostgreSQL: fresh planner statistics for tables just bulk-loaded (autovacuum would
    see to it later; the queries right after, in this transaction, need them now)."""
    if hdb.is_pg(db):
        for table in tables:
            hdb.execute(db, f"ANALYZE {table}")


def ascii_name(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def random_code(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))
