"""The demo store's items: product families built from a fixed vocabulary (vocabulary.json),
each item with an Amazon Reviews 2023 metadata record.

- ``platform``: a device (console, camera, laptop, phone, drone) and its accessories;
- ``series``: volumes 1..n of a game or book series;
- ``variants``: one product in several sizes or pack counts.

Each family has a habit order (device first, then accessories in a family-specific order;
volume k then k + 1; smaller variant then larger), which the users of :mod:`store` follow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

DAY_MS = 86_400_000

# -- vocabulary (vocabulary.json: brands, product families, review phrases) -----------------
_VOCABULARY: dict[str, Any] = json.loads(resources.files(__package__).joinpath("vocabulary.json").read_text(encoding="utf-8"))
_BRANDS = _VOCABULARY["brands"]
_MODEL_WORDS = _VOCABULARY["model_words"]
_PLATFORMS = _VOCABULARY["platforms"]
_SERIES_ADJ = _VOCABULARY["series_adjectives"]
_SERIES_NOUN = _VOCABULARY["series_nouns"]
_GAME_GENRES = _VOCABULARY["game_genres"]
_BOOK_GENRES = _VOCABULARY["book_genres"]
_AUTHORS_FIRST = _VOCABULARY["authors_first"]
_AUTHORS_LAST = _VOCABULARY["authors_last"]
_VARIANT_PRODUCTS = _VOCABULARY["variant_products"]
ADJECTIVES = _VOCABULARY["adjectives"]
REVIEW_GOOD = _VOCABULARY["review_good"]
REVIEW_BAD = _VOCABULARY["review_bad"]


@dataclass
class Family:
    kind: str  # "platform" | "series" | "variants"
    items: list[int] = field(default_factory=list)  # item indices, in habit order
    weight: float = 1.0  # how often users pick it as a favourite


@dataclass
class Catalogue:
    meta: list[dict[str, Any]]  # one Amazon 2023 metadata record per item
    family_of: list[int]  # item -> family index
    families: list[Family]
    popularity: np.ndarray  # [N] sampling weight of "popular" picks
    quality: np.ndarray  # [N] mean star rating


_ASIN_CHARS = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"))


def _asin(rng: np.random.Generator, taken: set[str]) -> str:
    """A fresh Amazon-looking id ("B0" + 8 characters)."""
    while True:
        asin = "B0" + "".join(rng.choice(_ASIN_CHARS, 8))
        if asin not in taken:
            taken.add(asin)
            return asin


def pick(rng: np.random.Generator, seq: list[Any]) -> Any:
    return seq[int(rng.integers(len(seq)))]


def _meta_record(
    asin: str,
    title: str,
    main: str,
    categories: list[str],
    features: list[str],
    description: list[str],
    store: str,
    details: dict[str, str],
    price: float | None,
) -> dict[str, Any]:
    """One metadata line in the Amazon Reviews 2023 schema (ratings filled in later)."""
    return {
        "main_category": main,
        "title": title,
        "average_rating": 0.0,
        "rating_number": 0,
        "features": features,
        "description": description,
        "price": price,
        "images": [{
            "thumb": f"https://example.com/images/{asin}_thumb.jpg",
            "large": f"https://example.com/images/{asin}_large.jpg",
            "variant": "MAIN",
            "hi_res": None,
        }],
        "videos": [],
        "store": store,
        "categories": categories,
        "details": details,
        "parent_asin": asin,
        "bought_together": None,
    }


def _price(rng: np.random.Generator, low: float, high: float) -> float | None:
    if rng.random() < 0.08:  # real dumps miss some prices
        return None
    return round(float(np.exp(rng.uniform(np.log(low), np.log(high)))), 2)


def _date(rng: np.random.Generator) -> str:
    months = ["January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December"]
    return f"{pick(rng, months)} {int(rng.integers(1, 29))}, {int(rng.integers(2014, 2022))}"


def _platform_family(
    rng: np.random.Generator, taken: set[str], meta: list[dict[str, Any]], kind: str
) -> list[int]:
    """A device and 5+ accessories (appended to ``meta``); returns their indices, habit order."""
    spec = _PLATFORMS[kind]
    brand = pick(rng, _BRANDS)
    name = f"{brand} {pick(rng, _MODEL_WORDS)} {int(rng.integers(2, 10))}"
    features = [spec["features"][i] for i in rng.permutation(len(spec["features"]))[:4]]
    asin = _asin(rng, taken)
    first = len(meta)
    meta.append(_meta_record(
        asin, f"{name} {spec['noun']}", spec["main"],
        [p.format(name=name) for p in spec["path"]], features,
        [f"The {name} is a {spec['noun'].lower()} from {brand}. {features[0]}."],
        brand, {"Brand": brand, "Model Name": name, "Date First Available": _date(rng)},
        _price(rng, 250, 1500),
    ))
    n_acc = int(rng.integers(5, len(spec["accessories"]) + 1))
    for i in rng.permutation(len(spec["accessories"]))[:n_acc]:  # the family's habit order
        accessory, leaf = spec["accessories"][i]
        maker = brand if rng.random() < 0.5 else pick(rng, _BRANDS)
        title = f"{maker} {accessory} for {name}"
        if rng.random() < 0.05:
            title = title.replace(" for ", " &amp; Accessories for ")  # escaped, as in dumps
        meta.append(_meta_record(
            _asin(rng, taken), title, spec["main"],
            [p.format(name=name) for p in spec["acc_path"]] + [leaf],
            [f"Designed for the {name} {spec['noun'].lower()}", f"{pick(rng, ADJECTIVES)} fit and finish"],
            [f"<p>Compatible with {name}.</p><br>{accessory} by {maker}."],
            maker, {"Brand": maker, "Compatible Devices": name},
            _price(rng, 8, 150),
        ))
    return list(range(first, len(meta)))


def _series_family(
    rng: np.random.Generator, taken: set[str], meta: list[dict[str, Any]], platform_names: list[str]
) -> list[int]:
    """Volumes 1..n of a game series (on one of the consoles so far) or of a book series."""
    title = f"{pick(rng, _SERIES_ADJ)} {pick(rng, _SERIES_NOUN)}"
    n = int(rng.integers(3, 8))
    first = len(meta)
    if rng.random() < 0.5 and platform_names:  # a game series on one console
        genre, blurb = pick(rng, _GAME_GENRES)
        console = pick(rng, platform_names)
        studio = pick(rng, _BRANDS) + " Studios"
        for vol in range(1, n + 1):
            name = title if vol == 1 else f"{title} {vol}"
            meta.append(_meta_record(
                _asin(rng, taken), f"{name} - {console}", "Video Games",
                ["Video Games", console, "Games", genre],
                [f"{genre} for {console}", f"Chapter {vol} of the {title} saga",
                 "Single player and online co-op"],
                [f"{name} is {blurb}.", f"Continue the story of {title} where part {vol - 1} ended."
                 if vol > 1 else f"The first part of the {title} series."],
                studio, {"Platform": console, "Genre": genre, "Release date": _date(rng)},
                _price(rng, 15, 70),
            ))
    else:  # a book series
        genre, blurb = pick(rng, _BOOK_GENRES)
        author = f"{pick(rng, _AUTHORS_FIRST)} {pick(rng, _AUTHORS_LAST)}"
        for vol in range(1, n + 1):
            meta.append(_meta_record(
                _asin(rng, taken), f"The {title}, Book {vol} (Kindle Edition)", "Books",
                ["Kindle Store", "Kindle eBooks", genre],
                [f"Book {vol} of {n} in The {title} series", f"By {author}"],
                [f"Book {vol} of {author}&#39;s {genre.lower()} series, {blurb}."],
                author, {"Publisher": f"{pick(rng, _BRANDS)} Press", "Language": "English",
                         "Print length": f"{int(rng.integers(250, 600))} pages"},
                _price(rng, 3, 15),
            ))
    return list(range(first, len(meta)))


def _variant_family(
    rng: np.random.Generator, taken: set[str], meta: list[dict[str, Any]]
) -> list[int]:
    """One product in its sizes / pack counts, smallest first."""
    product, main, path, dim, values, features = pick(rng, _VARIANT_PRODUCTS)
    brand = pick(rng, _BRANDS)
    first = len(meta)
    base_price = float(rng.uniform(8, 60))
    for i, value in enumerate(values):
        meta.append(_meta_record(
            _asin(rng, taken), f"{brand} {product}, {value}", main, list(path),
            list(features), [f"{brand} {product.lower()} in the {value} {dim.lower()} option."],
            brand, {"Brand": brand, dim: value},
            _price(rng, base_price * (1 + 0.4 * i), base_price * (1.2 + 0.4 * i)),
        ))
    return list(range(first, len(meta)))


def build_catalogue(rng: np.random.Generator, num_items: int) -> Catalogue:
    """Families (drawn 42% platform, 30% series, 28% variants) until ``num_items`` items."""
    taken: set[str] = set()
    meta: list[dict[str, Any]] = []
    families: list[Family] = []
    platform_names: list[str] = []
    kinds = list(_PLATFORMS)
    while len(meta) < num_items:
        r = rng.random()
        if r < 0.42:
            items = _platform_family(rng, taken, meta, pick(rng, kinds))
            if meta[items[0]]["main_category"] == "Video Games":
                platform_names.append(meta[items[0]]["categories"][1])
            families.append(Family("platform", items))
        elif r < 0.72:
            families.append(Family("series", _series_family(rng, taken, meta, platform_names)))
        else:
            families.append(Family("variants", _variant_family(rng, taken, meta)))
    family_of = [0] * len(meta)
    family_rank = rng.permutation(len(families))
    for f, family in enumerate(families):
        family.weight = float(1.0 / (1.0 + family_rank[f]) ** 0.5)
        for i in family.items:
            family_of[i] = f
    rank = rng.permutation(len(meta))
    popularity = 1.0 / (rank + 5.0) ** 1.1  # Zipf over a random order
    quality = np.clip(rng.normal(4.2, 0.4, len(meta)), 2.5, 4.9)
    return Catalogue(meta, family_of, families, popularity, quality)


