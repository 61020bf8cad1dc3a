"""A seeded synthetic store in the Amazon Reviews 2023 raw format, for the demo and for tests.

Files: ``<category>.jsonl.gz`` reviews and ``meta_<category>.jsonl.gz`` metadata, read by
``read_source("amazon2023", ...)``.

The store is built from item **families** whose texts are alike:

- ``platform``: a device (console, camera, laptop, phone, drone) and its accessories;
- ``series``: volumes 1..n of a game or book series;
- ``variants``: one product in several sizes or pack counts.

Each family has a habit order (device first, then accessories in a family-specific order;
volume k then k + 1; smaller variant then larger).  A user has a few favourite families and
walks: after an item, with a kind-dependent probability the next unbought item of its family
in habit order; otherwise the next unbought item of a favourite family (so an old chain can
resume later), a popular item (Zipf) or a random one (why this design:
``docs/DECISIONS.md``, "Demo data").  Every user has >= 5 interactions and every item >= 5 (topped up if needed), so a
5-core filter keeps everything.  Output is byte-identical for equal arguments.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from llada_rec.utils import atomic_path, atomic_write_text, sha256_hex

log = logging.getLogger(__name__)

DEMO_CATEGORY = "Demo_Electronics"
_FORMAT_VERSION = 1
_MIN_COUNT = 5  # every user and every item at least this often (5-core)
_DAY_MS = 86_400_000
_START_MS = 1_514_764_800_000  # 2018-01-01
_SPAN_MS = 1_400 * _DAY_MS  # first reviews until late 2021; later ones up to 2023

# -- vocabulary -------------------------------------------------------------------------------
_BRANDS = [
    "Novatek", "Zentri", "Aurix", "Kestrel", "Lumora", "Vexon", "Orbitek", "Pyxis", "Solace",
    "Tandem", "Quillon", "Brightvale", "Corvana", "Helixa", "Maridian", "Stratos", "Ferron",
    "Ionis", "Kairo", "Veloce", "Arcwise", "Northpeak", "Oculon", "Radiant", "Tesselate",
]
_MODEL_WORDS = ["X", "Neo", "Pro", "Air", "Max", "One", "Lite", "Prime", "Edge", "Nova", "Zen"]

# device type -> (main category, category path, device noun, accessories, feature phrases)
_PLATFORMS: dict[str, dict[str, Any]] = {
    "console": {
        "main": "Video Games",
        "path": ["Video Games", "{name}", "Consoles"],
        "acc_path": ["Video Games", "{name}", "Accessories"],
        "noun": "Gaming Console",
        "accessories": [
            ("Wireless Controller", "Controllers"), ("Charging Dock", "Chargers"),
            ("Carrying Case", "Cases"), ("Gaming Headset", "Headsets"),
            ("Memory Card 256GB", "Memory"), ("High Speed HDMI Cable", "Cables"),
            ("Cooling Fan Stand", "Cooling"), ("Racing Wheel", "Controllers"),
            ("Thumb Grip Caps", "Controllers"), ("Screen Protector", "Protectors"),
        ],
        "features": [
            "4K HDR gaming at up to 120 frames per second", "1TB solid state storage",
            "Backward compatible with thousands of games", "Quick resume for several games",
            "Wi-Fi 6 and Bluetooth 5.1", "Includes one wireless controller",
        ],
    },
    "camera": {
        "main": "Camera & Photo",
        "path": ["Electronics", "Camera & Photo", "Digital Cameras", "Mirrorless Cameras"],
        "acc_path": ["Electronics", "Camera & Photo", "Accessories"],
        "noun": "Mirrorless Camera",
        "accessories": [
            ("50mm f/1.8 Prime Lens", "Lenses"), ("Rechargeable Battery", "Batteries"),
            ("Dual Battery Charger", "Chargers"), ("Camera Shoulder Bag", "Bags & Cases"),
            ("Aluminium Travel Tripod", "Tripods"), ("UV Protection Filter", "Filters"),
            ("Wireless Remote Shutter", "Remotes"), ("Lens Hood", "Lens Accessories"),
            ("Screen Protector Glass", "Protectors"), ("Camera Strap", "Straps"),
        ],
        "features": [
            "24.2 megapixel full frame sensor", "5-axis in-body image stabilization",
            "4K 60p video recording", "Fast hybrid autofocus with eye tracking",
            "Weather sealed magnesium body", "Dual SD card slots",
        ],
    },
    "laptop": {
        "main": "Computers",
        "path": ["Electronics", "Computers & Accessories", "Computers & Tablets", "Laptops"],
        "acc_path": ["Electronics", "Computers & Accessories", "Laptop Accessories"],
        "noun": "Laptop",
        "accessories": [
            ("Laptop Sleeve", "Bags, Cases & Sleeves"), ("65W USB-C Charger", "Chargers & Adapters"),
            ("Wireless Mouse", "Mice"), ("USB-C Docking Station", "Docking Stations"),
            ("Keyboard Cover", "Skins"), ("Adjustable Laptop Stand", "Stands"),
            ("1080p Webcam", "Webcams"), ("Portable External SSD", "External Drives"),
            ("Privacy Screen Filter", "Screen Filters"),
        ],
        "features": [
            "14 inch 2.8K OLED display", "16GB memory and 512GB SSD",
            "Up to 14 hours of battery life", "Backlit keyboard and fingerprint reader",
            "Two Thunderbolt 4 ports", "Weighs only 2.9 pounds",
        ],
    },
    "phone": {
        "main": "Cell Phones & Accessories",
        "path": ["Cell Phones & Accessories", "Cell Phones"],
        "acc_path": ["Cell Phones & Accessories", "Accessories"],
        "noun": "Smartphone",
        "accessories": [
            ("Protective Phone Case", "Cases"), ("Tempered Glass Screen Protector", "Screen Protectors"),
            ("15W Wireless Charger", "Chargers"), ("Magnetic Car Mount", "Car Mounts"),
            ("True Wireless Earbuds", "Headphones"), ("10000mAh Power Bank", "Power Banks"),
            ("Camera Lens Protector", "Protectors"), ("Phone Grip Stand", "Stands"),
        ],
        "features": [
            "6.5 inch AMOLED display with 120Hz refresh", "Triple camera with night mode",
            "5G connectivity", "All-day 5000mAh battery", "128GB storage, unlocked",
            "IP68 water and dust resistance",
        ],
    },
    "drone": {
        "main": "Camera & Photo",
        "path": ["Electronics", "Camera & Photo", "Drones"],
        "acc_path": ["Electronics", "Camera & Photo", "Drone Accessories"],
        "noun": "Camera Drone",
        "accessories": [
            ("Spare Propellers", "Propellers"), ("Intelligent Flight Battery", "Batteries"),
            ("Battery Charging Hub", "Chargers"), ("Propeller Guards", "Guards"),
            ("Foldable Landing Pad", "Landing Pads"), ("ND Filter Set", "Filters"),
            ("Carrying Backpack", "Bags & Cases"),
        ],
        "features": [
            "4K camera on a 3-axis gimbal", "31 minutes of flight time",
            "Obstacle sensing in three directions", "10 km video transmission",
            "Weighs under 249 grams", "Return to home with GPS",
        ],
    },
}

_SERIES_ADJ = [
    "Starfall", "Iron", "Crimson", "Silent", "Emerald", "Shadow", "Frozen", "Golden", "Hollow",
    "Storm", "Ember", "Lunar", "Ancient", "Broken", "Wild", "Sunken", "Velvet", "Hidden",
]
_SERIES_NOUN = [
    "Chronicles", "Legends", "Kingdom", "Odyssey", "Saga", "Frontier", "Tactics", "Quest",
    "Dynasty", "Horizon", "Covenant", "Archives", "Realms", "Protocol", "Crown", "Tides",
]
_GAME_GENRES = [
    ("Action RPG", "an open world action role-playing game"),
    ("Strategy", "a turn based strategy game"), ("Racing", "an arcade racing game"),
    ("Platformer", "a colourful platform adventure"), ("Shooter", "a squad based shooter"),
    ("Puzzle", "a relaxing puzzle game"),
]
_BOOK_GENRES = [
    ("Fantasy", "an epic fantasy novel"), ("Science Fiction", "a space opera novel"),
    ("Mystery", "a detective mystery novel"), ("Thriller", "a fast paced thriller"),
    ("Young Adult", "a coming of age adventure novel"),
]
_AUTHORS_FIRST = ["Mara", "Jonas", "Elena", "Theo", "Priya", "Owen", "Lucia", "Felix", "Ines"]
_AUTHORS_LAST = ["Hartley", "Okafor", "Lindqvist", "Moreau", "Castell", "Whitlock", "Sato"]

# product -> (main category, category path, variant dimension, variant values, features)
_VARIANT_PRODUCTS: list[tuple[str, str, list[str], str, list[str], list[str]]] = [
    ("microSD Memory Card", "Computers", ["Electronics", "Computers & Accessories", "Memory Cards"],
     "Capacity", ["32GB", "64GB", "128GB", "256GB", "512GB"],
     ["Up to 160MB/s read speed", "A2 rated for apps", "Includes SD adapter"]),
    ("USB-C to USB-C Cable", "All Electronics", ["Electronics", "Accessories & Supplies", "Cables"],
     "Length", ["1ft", "3ft", "6ft", "10ft"],
     ["100W fast charging", "Braided nylon jacket", "USB 3.2 data at 10Gbps"]),
    ("AA Rechargeable Batteries", "All Electronics", ["Electronics", "Household Batteries", "AA"],
     "Pack", ["4-Pack", "8-Pack", "16-Pack", "24-Pack"],
     ["2800mAh high capacity", "Pre-charged, ready to use", "Recharge up to 1200 times"]),
    ("High Speed HDMI Cable", "All Electronics", ["Electronics", "Accessories & Supplies", "Cables", "HDMI"],
     "Length", ["3ft", "6ft", "10ft", "15ft", "25ft"],
     ["Supports 4K at 60Hz and HDR", "Gold plated connectors", "Ethernet channel"]),
    ("Bluetooth Speaker", "All Electronics", ["Electronics", "Portable Audio & Video", "Speakers"],
     "Size", ["Mini", "Compact", "Standard", "XL"],
     ["360 degree sound", "Waterproof IPX7", "Up to 20 hours of playtime"]),
    ("LED Desk Lamp", "All Electronics", ["Electronics", "Computers & Accessories", "Lighting"],
     "Model", ["Basic", "Dimmable", "with USB Port", "with Wireless Charger"],
     ["Five colour temperatures", "Touch control", "Eye caring flicker free light"]),
    ("Surge Protector Power Strip", "All Electronics", ["Electronics", "Accessories & Supplies", "Power Strips"],
     "Outlets", ["6 Outlets", "8 Outlets", "12 Outlets"],
     ["2100 joules surge protection", "Two USB charging ports", "Flat plug"]),
    ("Noise Cancelling Headphones", "All Electronics", ["Electronics", "Headphones", "Over-Ear"],
     "Edition", ["Standard", "Plus", "Pro"],
     ["Active noise cancellation", "40 hours battery life", "Multipoint Bluetooth"]),
]
_ADJECTIVES = ["Great", "Solid", "Excellent", "Decent", "Sturdy", "Reliable", "Handy", "Nice"]
_REVIEW_GOOD = [
    "Works exactly as described.", "Arrived quickly and well packed.", "Does the job.",
    "Better than I expected for the price.", "My second one, still happy.",
    "Easy to set up.", "Build quality is excellent.",
]
_REVIEW_BAD = [
    "Stopped working after a month.", "Not as described.", "Feels cheap.",
    "Returned it.", "Had to contact support twice.",
]


@dataclass
class _Family:
    kind: str  # "platform" | "series" | "variants"
    items: list[int] = field(default_factory=list)  # item indices, in habit order
    weight: float = 1.0  # how often users pick it as a favourite


@dataclass
class _Catalogue:
    meta: list[dict[str, Any]]  # one Amazon 2023 metadata record per item
    family_of: list[int]  # item -> family index
    families: list[_Family]
    popularity: np.ndarray  # [N] sampling weight of "popular" picks
    quality: np.ndarray  # [N] mean star rating


_ASIN_CHARS = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"))
_USER_CHARS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))


def _asin(rng: np.random.Generator, taken: set[str]) -> str:
    """A fresh Amazon-looking id ("B0" + 8 characters)."""
    while True:
        asin = "B0" + "".join(rng.choice(_ASIN_CHARS, 8))
        if asin not in taken:
            taken.add(asin)
            return asin


def _pick(rng: np.random.Generator, seq: list[Any]) -> Any:
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
    return f"{_pick(rng, months)} {int(rng.integers(1, 29))}, {int(rng.integers(2014, 2022))}"


def _platform_family(
    rng: np.random.Generator, taken: set[str], meta: list[dict[str, Any]], kind: str
) -> list[int]:
    """A device and 5+ accessories (appended to ``meta``); returns their indices, habit order."""
    spec = _PLATFORMS[kind]
    brand = _pick(rng, _BRANDS)
    name = f"{brand} {_pick(rng, _MODEL_WORDS)} {int(rng.integers(2, 10))}"
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
        maker = brand if rng.random() < 0.5 else _pick(rng, _BRANDS)
        title = f"{maker} {accessory} for {name}"
        if rng.random() < 0.05:
            title = title.replace(" for ", " &amp; Accessories for ")  # escaped, as in dumps
        meta.append(_meta_record(
            _asin(rng, taken), title, spec["main"],
            [p.format(name=name) for p in spec["acc_path"]] + [leaf],
            [f"Designed for the {name} {spec['noun'].lower()}", f"{_pick(rng, _ADJECTIVES)} fit and finish"],
            [f"<p>Compatible with {name}.</p><br>{accessory} by {maker}."],
            maker, {"Brand": maker, "Compatible Devices": name},
            _price(rng, 8, 150),
        ))
    return list(range(first, len(meta)))


def _series_family(
    rng: np.random.Generator, taken: set[str], meta: list[dict[str, Any]], platform_names: list[str]
) -> list[int]:
    """Volumes 1..n of a game series (on one of the consoles so far) or of a book series."""
    title = f"{_pick(rng, _SERIES_ADJ)} {_pick(rng, _SERIES_NOUN)}"
    n = int(rng.integers(3, 8))
    first = len(meta)
    if rng.random() < 0.5 and platform_names:  # a game series on one console
        genre, blurb = _pick(rng, _GAME_GENRES)
        console = _pick(rng, platform_names)
        studio = _pick(rng, _BRANDS) + " Studios"
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
        genre, blurb = _pick(rng, _BOOK_GENRES)
        author = f"{_pick(rng, _AUTHORS_FIRST)} {_pick(rng, _AUTHORS_LAST)}"
        for vol in range(1, n + 1):
            meta.append(_meta_record(
                _asin(rng, taken), f"The {title}, Book {vol} (Kindle Edition)", "Books",
                ["Kindle Store", "Kindle eBooks", genre],
                [f"Book {vol} of {n} in The {title} series", f"By {author}"],
                [f"Book {vol} of {author}&#39;s {genre.lower()} series, {blurb}."],
                author, {"Publisher": f"{_pick(rng, _BRANDS)} Press", "Language": "English",
                         "Print length": f"{int(rng.integers(250, 600))} pages"},
                _price(rng, 3, 15),
            ))
    return list(range(first, len(meta)))


def _variant_family(
    rng: np.random.Generator, taken: set[str], meta: list[dict[str, Any]]
) -> list[int]:
    """One product in its sizes / pack counts, smallest first."""
    product, main, path, dim, values, features = _pick(rng, _VARIANT_PRODUCTS)
    brand = _pick(rng, _BRANDS)
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


def _catalogue(rng: np.random.Generator, num_items: int) -> _Catalogue:
    """Families (drawn 42% platform, 30% series, 28% variants) until ``num_items`` items."""
    taken: set[str] = set()
    meta: list[dict[str, Any]] = []
    families: list[_Family] = []
    platform_names: list[str] = []
    kinds = list(_PLATFORMS)
    while len(meta) < num_items:
        r = rng.random()
        if r < 0.42:
            items = _platform_family(rng, taken, meta, _pick(rng, kinds))
            if meta[items[0]]["main_category"] == "Video Games":
                platform_names.append(meta[items[0]]["categories"][1])
            families.append(_Family("platform", items))
        elif r < 0.72:
            families.append(_Family("series", _series_family(rng, taken, meta, platform_names)))
        else:
            families.append(_Family("variants", _variant_family(rng, taken, meta)))
    family_of = [0] * len(meta)
    family_rank = rng.permutation(len(families))
    for f, family in enumerate(families):
        family.weight = float(1.0 / (1.0 + family_rank[f]) ** 0.5)
        for i in family.items:
            family_of[i] = f
    rank = rng.permutation(len(meta))
    popularity = 1.0 / (rank + 5.0) ** 1.1  # Zipf over a random order
    quality = np.clip(rng.normal(4.2, 0.4, len(meta)), 2.5, 4.9)
    return _Catalogue(meta, family_of, families, popularity, quality)


def _sampler(rng: np.random.Generator, weights: np.ndarray) -> Callable[[], int]:
    """Draw an index with probability proportional to ``weights`` (faster than rng.choice)."""
    cdf = np.cumsum(weights) / np.sum(weights)
    return lambda: int(min(np.searchsorted(cdf, rng.random(), side="right"), len(cdf) - 1))


#: probability of continuing the last item's family in habit order, by family kind
_FOLLOW = {"platform": 0.7, "series": 0.8, "variants": 0.35}


def _sequences(rng: np.random.Generator, cat: _Catalogue, num_users: int) -> list[list[int]]:
    """Users' item sequences (oldest first, no repeats) following the habits described above."""
    n_items = len(cat.meta)
    popular = _sampler(rng, cat.popularity)
    family_pick = _sampler(rng, np.array([f.weight for f in cat.families]))
    position = {i: k for f in cat.families for k, i in enumerate(f.items)}

    def next_unbought(family: _Family, after: int, owned: set[int]) -> int | None:
        """The first (or, sometimes, second) unbought item after position ``after``."""
        rest = [i for i in family.items[after + 1 :] if i not in owned]
        if not rest:
            return None
        return rest[1] if len(rest) > 1 and rng.random() < 0.2 else rest[0]

    sequences = []
    for _ in range(num_users):
        favourites = list(dict.fromkeys(family_pick() for _ in range(int(rng.integers(2, 5)))))
        length = min(_MIN_COUNT + int(rng.geometric(1 / 5.5)) - 1, 40, n_items // 2)
        seq: list[int] = []
        owned: set[int] = set()
        while len(seq) < length:
            item = None
            if seq:
                family = cat.families[cat.family_of[seq[-1]]]
                if rng.random() < _FOLLOW[family.kind]:
                    item = next_unbought(family, position[seq[-1]], owned)
            if item is None:
                r = rng.random()
                if r < 0.55:
                    item = next_unbought(cat.families[_pick(rng, favourites)], -1, owned)
                elif r < 0.85:
                    item = popular()
                else:
                    item = int(rng.integers(n_items))
            if item is not None and item not in owned:
                seq.append(item)
                owned.add(item)
        sequences.append(seq)
    _top_up(rng, sequences, n_items)
    return sequences


def _top_up(rng: np.random.Generator, sequences: list[list[int]], n_items: int) -> None:
    """Insert rare items at random places of random users until each occurs >= 5 times."""
    counts = np.bincount([i for s in sequences for i in s], minlength=n_items)
    for item in np.flatnonzero(counts < _MIN_COUNT):
        users = rng.permutation(len(sequences))
        need = _MIN_COUNT - counts[item]
        for u in users:
            if need == 0:
                break
            if item not in sequences[u]:
                sequences[u].insert(int(rng.integers(len(sequences[u]) + 1)), int(item))
                need -= 1


def _review(
    rng: np.random.Generator, meta: dict[str, Any], quality: float, user: str, ts: int
) -> dict[str, Any]:
    """One review line in the Amazon Reviews 2023 schema; the rating is around the quality."""
    rating = float(np.clip(round(rng.normal(quality, 0.8)), 1, 5))
    good = rating >= 4
    phrases = _REVIEW_GOOD if good else _REVIEW_BAD
    if good:
        title = "Five Stars" if rating == 5 else f"{_pick(rng, _ADJECTIVES)} product"
    else:
        title = "Disappointed"
    asin = meta["parent_asin"]
    if rng.random() < 0.2:  # a child variant of the parent product
        asin = asin[:-1] + ("X" if asin[-1] != "X" else "Y")
    return {
        "rating": rating,
        "title": title,
        "text": f"{_pick(rng, phrases)} {_pick(rng, phrases)}",
        "images": [],
        "asin": asin,
        "parent_asin": meta["parent_asin"],
        "user_id": user,
        "timestamp": ts,
        "helpful_vote": int(rng.poisson(0.7)),
        "verified_purchase": bool(rng.random() < 0.9),
    }


def generate_demo(
    num_users: int = 2000, num_items: int = 800, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(review records, metadata records) of the synthetic store; reviews in a shuffled order."""
    if num_items < 20:
        raise ValueError(f"num_items must be >= 20, got {num_items}")
    if num_users < max(num_items // 2, 10):
        raise ValueError(
            f"num_users={num_users} is too few for num_items={num_items}: need at least "
            f"{max(num_items // 2, 10)} so every item reaches {_MIN_COUNT} interactions"
        )
    rng = np.random.default_rng(seed)
    cat = _catalogue(rng, num_items)
    sequences = _sequences(rng, cat, num_users)
    user_ids = list(dict.fromkeys("A" + "".join(rng.choice(_USER_CHARS, 27)) for _ in sequences))
    if len(user_ids) != len(sequences):  # a 27-character collision: practically impossible
        raise RuntimeError("duplicate synthetic user id; use another seed")
    reviews = []
    for user, seq in zip(user_ids, sequences):
        ts = _START_MS + int(rng.integers(0, _SPAN_MS))
        for item in seq:
            reviews.append(_review(rng, cat.meta[item], float(cat.quality[item]), user, ts))
            if rng.random() > 0.03:  # ~3% ties, as in real dumps
                ts += int(rng.exponential(12 * _DAY_MS)) + 60_000
    for i, record in enumerate(cat.meta):
        record["rating_number"] = int(rng.integers(20, 5000))
        record["average_rating"] = round(float(cat.quality[i] + rng.normal(0, 0.1)), 1)
    order = rng.permutation(len(reviews))
    return [reviews[i] for i in order], cat.meta


def _gzip_jsonl(records: list[dict[str, Any]], path: Path) -> None:
    """Byte-reproducible gzip (mtime 0, no file name in the header), written atomically."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz:
        for record in records:
            gz.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def _file_hash(path: Path) -> str:
    return sha256_hex(path.read_bytes())


def write_demo_dataset(
    path: str | Path,
    category: str = DEMO_CATEGORY,
    num_users: int = 2000,
    seed: int = 0,
    num_items: int = 800,
) -> dict[str, Path]:
    """Write ``<path>/<category>.jsonl.gz`` and ``<path>/meta_<category>.jsonl.gz``.

    A manifest (``<path>/.demo_<category>.json``: arguments and file hashes, written last)
    marks a complete dataset; when it matches, nothing is rewritten.
    Returns ``{"reviews": ..., "meta": ...}``.
    """
    if not category or "/" in category:
        raise ValueError(f"category {category!r} must be a non-empty file-name part")
    root = Path(path)
    files = {"reviews": root / f"{category}.jsonl.gz", "meta": root / f"meta_{category}.jsonl.gz"}
    manifest = root / f".demo_{category}.json"
    args = {"format": _FORMAT_VERSION, "category": category, "num_users": num_users,
            "num_items": num_items, "seed": seed}
    if manifest.exists() and all(p.exists() for p in files.values()):
        try:
            saved = json.loads(manifest.read_text(encoding="utf-8"))
            if saved.get("args") == args and saved.get("sha256") == {
                k: _file_hash(p) for k, p in files.items()
            }:
                log.info("demo dataset already complete in %s", root)
                return files
        except (ValueError, OSError) as err:
            log.warning("demo manifest %s unreadable (%s); rewriting", manifest, err)
    reviews, meta = generate_demo(num_users=num_users, num_items=num_items, seed=seed)
    _gzip_jsonl(reviews, files["reviews"])
    _gzip_jsonl(meta, files["meta"])
    hashes = {k: _file_hash(p) for k, p in files.items()}
    atomic_write_text(manifest, json.dumps({"args": args, "sha256": hashes}, indent=1))
    log.info("wrote demo dataset (%d reviews, %d items) to %s", len(reviews), len(meta), root)
    return files
