"""Which kind of product a catalogue row is, for its drawn picture (no Pillow here).

The catalogue has no "kind" column: a product is a category and a name ("Short de
running Élan 4 Homme", "Chaussettes de sport Vercors 300"). :func:`kind_for` reads
the name (French or English, accents and case ignored) for the words that say what
the thing is, and falls back on the category's usual drawing, then on a parcel box.
Socks are socks and shorts are shorts even in a category of T-shirts.
"""

from __future__ import annotations

import re

from app.core.text import index_fold

#: Name words -> kind, the first match wins: the most specific words come first
#: ("chaussures de ski" before "chaussures", "short de bain" before "maillot de bain").
NAME_RULES: tuple[tuple[str, str], ...] = (
    (r"chaussettes?|socks?", "socks"),
    (r"chaussures? de ski|ski boots?", "skiboot"),
    (r"chaussures? de football|football boots?|crampons?", "cleats"),
    (r"pointes?|spikes?", "spikes"),
    (r"sandales?|sandals?", "sandal"),
    (r"impermeables?.*randonnee|randonnee.*impermeables?|hiking boots?", "boot"),
    (r"chaussures? de randonnee|hiking shoes?", "hiker"),
    (r"baskets? montantes?|high-?tops?", "hightop"),
    (r"chaussures? de (?:running|trail)|running shoes?|trail", "runner"),
    (r"baskets?|sneakers?|chaussures? de marche|walking shoes?", "sneaker"),
    (r"short de bain|swim shorts?", "swimshorts"),
    (r"shorts?", "shorts"),
    (r"collants?|leggings?|tights", "tights"),
    (r"brassieres?|sports? bra", "bra"),
    (r"combinaisons?|wetsuits?", "wetsuit"),
    (r"maillots? de bain|swimsuits?", "swimsuit"),
    (r"maillots? de football|football shirts?|jersey", "jersey"),
    (r"t-?shirts?|tee", "tshirt"),
    (r"doudounes?|down jackets?", "puffer"),
    (r"polaires?|fleeces?", "fleece"),
    (r"vestes?|coupe-vent|manteaux?|jackets?|windbreakers?|coats?", "jacket"),
    (r"protege-tibias|shin guards?", "shinguard"),
    (r"tube de balles|balles? de tennis|tennis balls?", "balltube"),
    (r"raquettes? de padel|padel", "padel"),
    (r"raquettes? de badminton|badminton", "badminton"),
    (r"raquettes?|rackets?", "racket"),
    (r"ballons?|footballs?|balls?", "ball"),
    (r"halteres|dumbbells?", "dumbbell"),
    (r"tapis de yoga|yoga mats?", "yogamat"),
    (r"tapis de course|treadmills?", "treadmill"),
    (r"bancs?|bench", "bench"),
    (r"snowboards?", "snowboard"),
    (r"masques?|goggles", "goggles"),
    (r"gants|gloves", "gloves"),
    (r"skis?", "skis"),
    (r"sacs? de couchage|sleeping bags?", "sleepingbag"),
    (r"sacs? a dos|backpacks?", "backpack"),
    (r"sacs? de sport|sports? bags?|duffel", "duffel"),
    (r"tentes?|tents?", "tent"),
    (r"rechauds?|stoves?", "stove"),
    (r"gourdes?|bottles?|bidons?", "bottle"),
    (r"casquettes?|caps?", "cap"),
    (r"lampes? frontales?|head ?torch|headlamps?", "headlamp"),
    (r"velos?|vtt|bikes?|bicycles?", "bike"),
)
_COMPILED = tuple((re.compile(rf"\b(?:{words})\b"), kind) for words, kind in NAME_RULES)

#: A category's usual drawing when the name says nothing (and its tile's picture).
CATEGORY_KINDS: dict[str, str] = {
    "chaussures-running": "runner",
    "chaussures-randonnee": "boot",
    "baskets": "sneaker",
    "velos": "bike",
    "textile-running": "tshirt",
    "vestes": "jacket",
    "maillots-de-bain": "swimsuit",
    "tennis": "racket",
    "football": "ball",
    "fitness": "dumbbell",
    "ski": "skis",
    "camping": "tent",
    "accessoires": "backpack",
}

#: Every kind there is a drawing for; "box" is the generic parcel.
KINDS: frozenset[str] = frozenset({kind for _, kind in NAME_RULES} | {"box"})


def _plain(text: str) -> str:
    """Folded as searches fold (app.core.text.fold), apostrophes as spaces."""
    return re.sub(r"[’'`]", " ", index_fold(text))


def kind_from_name(name: str) -> str | None:
    """The kind a product name says (``None`` when no word of it is known)."""
    plain = _plain(name or "")
    for pattern, kind in _COMPILED:
        if pattern.search(plain):
            return kind
    return None


def kind_for(category_slug: str, name: str = "", name_en: str = "") -> str:
    """The drawing for a product: what its name says, else its category's, else a box."""
    return (
        kind_from_name(name)
        or kind_from_name(name_en)
        or CATEGORY_KINDS.get(category_slug or "", "box")
    )
