"""Head office's year for :mod:`app.demo.hub_year`: users of every role and API tokens,
promotions made and published through the domain code at the time head office would
have, and a year of the audit log."""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.core import clock
from app.core.secrets import hash_secret
from app.demo.hub_year_data import (
    PROMO_THEMES,
    USER_PASSWORD,
    ascii_name,
    bulk,
    clock_at,
)
from app.hub import database as hdb
from app.hub.database import Db
from app.hub.domain import promotions as promo
from app.hub.domain.promotion_schedule import DEFAULT_TIMEZONE, LOCAL_FORMAT


def add_users(db: Db, rng: random.Random, n: int, now: datetime) -> list[dict[str, Any]]:
    """Head-office users (every role; two disabled) sharing :data:`USER_PASSWORD`."""
    password_hash = hash_secret(USER_PASSWORD)  # one scrypt for all: the same password
    firsts = ("Claire", "Marc", "Sophie", "Julien", "Nadia", "Olivier", "Aurélie", "Karim")
    lasts = ("Lemoine", "Faure", "Chevalier", "Perrin", "Gauthier", "Rousseau", "Blanc", "Henry")
    people = []
    for i in range(n):
        role = "admin" if i % 10 == 0 else "marketing" if i % 3 == 0 else "operations"
        first, last = rng.choice(firsts), rng.choice(lasts)
        email = f"{ascii_name(first)}.{ascii_name(last)}{i}@siege.example"
        row = {
            "id": "hu-" + rng.randbytes(6).hex(),
            "email": email,
            "name": f"{first} {last}",
            "role": role,
            "password_hash": password_hash,
            "created_at": clock.iso(now - timedelta(days=rng.randint(380, 2000))),
            "disabled": int(i in (7, 23)),
        }
        hdb.insert(db, "hq_users", row)
        people.append(row)
    for i, role in enumerate(("operations", "marketing", "operations", "admin")):
        hdb.insert(
            db,
            "hq_tokens",
            {
                "id": "ht-" + rng.randbytes(6).hex(),
                "name": f"Outil {('supervision', 'catalogue', 'entrepôt', 'audit')[i]}",
                "token_hash": rng.randbytes(32).hex(),
                "role": role,
                "created_at": clock.iso(now - timedelta(days=rng.randint(30, 700))),
                "last_used_at": clock.iso(now - timedelta(minutes=rng.randint(1, 3000))),
                "revoked_at": None if i else clock.iso(now - timedelta(days=3)),
            },
        )
    return people


def add_promotions(
    db: Db,
    rng: random.Random,
    made: list[dict[str, Any]],
    people: list[dict[str, Any]],
    now: datetime,
    days: int,
) -> tuple[int, list[tuple[datetime, dict[str, Any], str, dict[str, Any]]]]:
    """About four promotions a week over the year, made through the domain code at the
    time head office would have; returns how many and their audit events."""
    zone = ZoneInfo(DEFAULT_TIMEZONE)
    slugs = [r[0] for r in hdb.execute(db, "SELECT slug FROM categories ORDER BY id").fetchall()]
    skus = [r[0] for r in hdb.execute(db, "SELECT sku FROM variants ORDER BY sku").fetchall()]
    marketers = [p for p in people if p["role"] in ("marketing", "admin") and not p["disabled"]]
    events: list[tuple[datetime, dict[str, Any], str, dict[str, Any]]] = []
    count = 0
    for week in range(days // 7 + 2):
        for _ in range(4):
            starts = now - timedelta(days=days) + timedelta(days=7 * week + rng.randint(0, 6))
            starts = starts.astimezone(zone).replace(hour=rng.choice((0, 8, 9)), minute=0)
            ends = starts + timedelta(days=rng.choice((2, 3, 7, 7, 10, 14, 21)), hours=12)
            made_at = starts - timedelta(days=rng.randint(2, 20), hours=rng.randint(0, 8))
            if made_at >= now:
                continue
            who = rng.choice(marketers)
            theme_fr, theme_en = rng.choice(PROMO_THEMES)
            scope = rng.choice(("all", "category", "category", "sku"))
            kind = rng.choice(("percent", "percent", "amount", "nth_percent"))
            value = {"percent": rng.choice((10, 15, 20, 30)), "amount": rng.choice((500, 1000))}
            amount = value.get(kind, 50)
            offer = {"amount": f"-{amount // 100} €", "nth_percent": "2e à -50 %"}
            data: dict[str, Any] = {
                "title_fr": f"{theme_fr} : {offer.get(kind, f'-{amount} %')}",
                "title_en": theme_en,
                "text_fr": f"{theme_fr}, du {starts:%d/%m} au {ends:%d/%m}.",
                "kind": kind,
                "value": amount,
                "nth": 2,
                "scope": scope,
                "targets": (
                    rng.sample(slugs, rng.randint(1, 3))
                    if scope == "category"
                    else rng.sample(skus, rng.randint(1, 40))
                    if scope == "sku"
                    else []
                ),
                "priority": rng.choice((0, 0, 5, 10)),
                "starts_local": starts.strftime(LOCAL_FORMAT),
                "ends_local": ends.strftime(LOCAL_FORMAT),
                "timezone": DEFAULT_TIMEZONE,
                "stores": (
                    None
                    if rng.random() < 0.7
                    else [s["id"] for s in rng.sample(made, min(len(made), rng.randint(1, 30)))]
                ),
            }
            with clock_at(made_at):
                row = promo.create(db, data, who["email"])
            events.append((made_at, who, "promotion.created", {"promotion_id": row["id"]}))
            count += 1
            fate = rng.random()
            if fate < 0.05:
                continue  # a draft never published
            published_at = min(made_at + timedelta(hours=rng.randint(1, 72)), starts)
            if published_at >= now:
                continue  # still a draft
            with clock_at(published_at):
                promo.publish(db, row["id"], who["email"], now=published_at)
            events.append((published_at, who, "promotion.published", {"promotion_id": row["id"]}))
            if fate < 0.12:
                pulled = published_at + timedelta(hours=rng.randint(1, 100))
                if pulled < now:
                    with clock_at(pulled):
                        promo.unpublish(db, row["id"], who["email"])
                    events.append(
                        (pulled, who, "promotion.unpublished", {"promotion_id": row["id"]})
                    )
    return count, events


def add_audit(
    db: Db,
    rng: random.Random,
    people: list[dict[str, Any]],
    made: list[dict[str, Any]],
    promo_events: list[tuple[datetime, dict[str, Any], str, dict[str, Any]]],
    now: datetime,
    days: int,
) -> int:
    """A year of the audit log: logins (and failed ones), logouts, outbox actions, user
    administration, and the promotion work done above; in time order."""
    events = list(promo_events)
    start = now - timedelta(days=days)
    admins = [p for p in people if p["role"] == "admin"]
    for day in range(days + 1):
        base = (start + timedelta(days=day)).replace(hour=7, minute=0, second=0)
        if base.weekday() == 6:
            continue
        for person in people:
            if person["disabled"] or rng.random() > 0.65:
                continue
            at = base + timedelta(minutes=rng.randint(0, 180))
            if rng.random() < 0.04:
                events.append((at, person, "login.wrong_password", {"email": person["email"]}))
                at += timedelta(seconds=rng.randint(5, 60))
            events.append((at, person, "login", {}))
            if person["role"] == "operations" and rng.random() < 0.25:
                store = rng.choice(made)
                action = rng.choice(("outbox.retry", "outbox.retry", "outbox.discard"))
                detail = {
                    "store_id": store["id"],
                    "tx_id": str(uuid.UUID(int=rng.getrandbits(128))),
                }
                if action == "outbox.discard":
                    detail["reason"] = "article jamais référencé"
                events.append((at + timedelta(minutes=rng.randint(1, 300)), person, action, detail))
            if rng.random() < 0.6:
                events.append((at + timedelta(hours=rng.randint(1, 9)), person, "logout", {}))
        if rng.random() < 0.3:
            events.append((base, None, "login.failed", {"email": "inconnu@exemple.fr"}))
        if admins and rng.random() < 0.05:
            target = rng.choice(people)
            action = rng.choice(("user.password_changed", "user.role_changed", "token.created"))
            events.append(
                (base + timedelta(hours=3), rng.choice(admins), action, {"user_id": target["id"]})
            )
    events = [e for e in events if e[0] < now]
    events.sort(key=lambda e: e[0])
    rows = [
        (
            clock.iso(at),
            who["id"] if who else None,
            who["email"] if who else "",
            action,
            json.dumps(detail, ensure_ascii=False, separators=(",", ":")),
            f"10.{rng.randint(0, 40)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        )
        for at, who, action, detail in events
    ]
    bulk(db, "hq_audit", ["at", "actor_id", "actor_label", "action", "detail", "ip"], rows)
    return len(rows)


# --- Web orders -------------------------------------------------------------------------
