"""Generate the sample store's catalog (``items.jsonl``) deterministically.

The output is committed, so the demo works offline and every install sees the same items; this
script documents how it was made and lets us regenerate it after changing the vocabulary. A fixed
seed (``random.Random(7)``) keeps reruns byte-identical.

Run: ``python -m loopwise.sample.generate_catalog [output-path]``.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SEED = 7
CATALOG_END = datetime(2026, 11, 1, tzinfo=UTC)
CATALOG_DAYS = 365
NEW_WITHIN_DAYS = 45  # items tagged "new" were added this recently
DEFAULT_OUTPUT = Path(__file__).with_name("items.jsonl")


@dataclass(frozen=True, slots=True)
class ProductType:
    noun: str  # last word(s) of the title, e.g. "Running Shoe"
    tag: str  # the tag every product of this type carries
    price: tuple[int, int]  # realistic price range in whole units
    blurb: str  # first sentence; {model} is replaced


@dataclass(frozen=True, slots=True)
class Category:
    key: str
    prefix: str
    count: int
    brands: tuple[str, ...]
    models: tuple[str, ...]
    types: tuple[ProductType, ...]
    tags: tuple[str, ...]  # category-specific tags beyond the shared ones
    related: tuple[str, ...]  # plausible second categories


SHARED_TAGS = ("women", "men", "beginner", "pro", "sale", "new")

CATEGORIES: tuple[Category, ...] = (
    Category(
        key="running",
        prefix="run",
        count=40,
        brands=("Stridewell", "Pacefield", "Northlap", "Kinetic Run"),
        models=("Trailblazer", "Tempo", "Skyline", "Cadence", "Ridgeback", "Swift", "Marathon"),
        types=(
            ProductType(
                "Running Shoe",
                "shoes",
                (89, 180),
                "The {model} pairs a responsive foam midsole with a breathable knit upper.",
            ),
            ProductType(
                "Trail Shoe",
                "shoes",
                (99, 190),
                "Deep 5 mm lugs keep the {model} planted on wet roots and loose gravel.",
            ),
            ProductType(
                "Running Tee",
                "apparel",
                (25, 55),
                "A featherweight {model} tee that wicks sweat on long, hot runs.",
            ),
            ProductType(
                "Running Tights",
                "apparel",
                (45, 95),
                "The {model} tights support tired legs and have a zip pocket for keys.",
            ),
            ProductType(
                "Running Jacket",
                "apparel",
                (80, 160),
                "The {model} shell packs into its own pocket and shrugs off showers.",
            ),
            ProductType(
                "Hydration Vest",
                "accessories",
                (60, 140),
                "The {model} vest holds 5 litres, two soft flasks and a phone without bouncing.",
            ),
            ProductType(
                "GPS Watch",
                "electronics",
                (150, 450),
                "The {model} tracks pace, heart rate and route with two weeks of battery life.",
            ),
            ProductType(
                "Running Socks",
                "accessories",
                (12, 25),
                "Cushioned {model} socks with a seamless toe to prevent blisters.",
            ),
        ),
        tags=("road", "trail", "waterproof", "reflective"),
        related=("hiking", "yoga", "cycling"),
    ),
    Category(
        key="hiking",
        prefix="hike",
        count=36,
        brands=("Summitline", "Cairn & Co", "Alpenward", "Trailhead"),
        models=("Ridgeway", "Basecamp", "Crag", "Timberline", "Scout", "Highpass"),
        types=(
            ProductType(
                "Hiking Boot",
                "boots",
                (120, 260),
                "The {model} boot has a waterproof membrane and a stiff sole for rocky ground.",
            ),
            ProductType(
                "Daypack 24L",
                "packs",
                (60, 140),
                "The {model} daypack has a ventilated back panel and room for a full day out.",
            ),
            ProductType(
                "Trekking Poles",
                "accessories",
                (50, 150),
                "Aluminium {model} poles that fold down small enough to fit in a daypack.",
            ),
            ProductType(
                "Fleece Jacket",
                "apparel",
                (60, 130),
                "A warm {model} fleece that works as a mid layer or on its own on cool evenings.",
            ),
            ProductType(
                "Rain Shell",
                "apparel",
                (110, 280),
                "The {model} three-layer shell keeps you dry when the weather turns.",
            ),
            ProductType(
                "Hiking Pants",
                "apparel",
                (55, 110),
                "The {model} pants stretch where you need them and dry quickly after rain.",
            ),
            ProductType(
                "Headlamp",
                "electronics",
                (25, 80),
                "A rechargeable 400-lumen {model} headlamp with a red night mode.",
            ),
        ),
        tags=("waterproof", "lightweight", "ultralight", "multi-day"),
        related=("outdoor-living", "running"),
    ),
    Category(
        key="cycling",
        prefix="cyc",
        count=34,
        brands=("Velora", "Chainring", "Rouleur", "Spokewise"),
        models=("Aero", "Gravel King", "Sprint", "Col", "Domestique", "Echelon"),
        types=(
            ProductType(
                "Cycling Helmet",
                "helmets",
                (60, 250),
                "The {model} helmet keeps you cool with twelve vents and a MIPS liner.",
            ),
            ProductType(
                "Cycling Jersey",
                "apparel",
                (50, 130),
                "A race-fit {model} jersey with three rear pockets and a full-length zip.",
            ),
            ProductType(
                "Bib Shorts",
                "apparel",
                (70, 180),
                "The {model} bib shorts have a dense chamois for long days in the saddle.",
            ),
            ProductType(
                "Bike Light Set",
                "electronics",
                (30, 120),
                "A USB-C rechargeable {model} front and rear light set for dark commutes.",
            ),
            ProductType(
                "Cycling Shoe",
                "shoes",
                (90, 320),
                "A carbon-soled {model} shoe that turns every watt into speed.",
            ),
            ProductType(
                "Saddle Bag",
                "accessories",
                (20, 60),
                "The {model} saddle bag fits a spare tube, levers and a multi-tool.",
            ),
            ProductType(
                "Mini Pump",
                "accessories",
                (20, 55),
                "A compact {model} pump that reaches 100 psi and clips to your bottle cage.",
            ),
        ),
        tags=("road", "gravel", "commute", "reflective"),
        related=("running", "outdoor-living"),
    ),
    Category(
        key="yoga",
        prefix="yoga",
        count=30,
        brands=("Lotusline", "Stillwater", "Asana Works", "Breathe"),
        models=("Flow", "Sun Salute", "Balance", "Zen", "Vinyasa", "Grounded"),
        types=(
            ProductType(
                "Yoga Mat",
                "mats",
                (35, 120),
                "The {model} mat grips even when you sweat and cushions knees with 5 mm of rubber.",
            ),
            ProductType(
                "Yoga Block",
                "props",
                (12, 30),
                "A firm cork {model} block that helps you ease into deeper poses.",
            ),
            ProductType(
                "Yoga Strap",
                "props",
                (10, 22),
                "A 2.5 m cotton {model} strap with a metal D-ring buckle.",
            ),
            ProductType(
                "Yoga Leggings",
                "apparel",
                (45, 110),
                "High-waisted {model} leggings in a buttery fabric that stays put.",
            ),
            ProductType(
                "Studio Top",
                "apparel",
                (30, 70),
                "A soft, breathable {model} top for studio flows and everyday wear.",
            ),
            ProductType(
                "Meditation Cushion",
                "props",
                (35, 85),
                "The {model} cushion is filled with buckwheat hulls for steady, comfortable sits.",
            ),
        ),
        tags=("eco", "travel", "hot-yoga", "non-slip"),
        related=("running", "swimming"),
    ),
    Category(
        key="swimming",
        prefix="swim",
        count=28,
        brands=("Tidewater", "Laneline", "Aquarius", "Blue Mile"),
        models=("Riptide", "Lap", "Current", "Harbor", "Openwater", "Shoal"),
        types=(
            ProductType(
                "Swim Goggles",
                "goggles",
                (18, 55),
                "Anti-fog {model} goggles with a wide field of view and a leak-proof seal.",
            ),
            ProductType(
                "Swimsuit",
                "apparel",
                (40, 110),
                "A chlorine-proof {model} swimsuit that keeps its shape lap after lap.",
            ),
            ProductType(
                "Jammer",
                "apparel",
                (35, 80),
                "A fast-drying {model} jammer cut for racing and daily training.",
            ),
            ProductType(
                "Swim Cap",
                "accessories",
                (8, 20),
                "A tear-resistant silicone {model} cap that keeps hair out of the way.",
            ),
            ProductType(
                "Wetsuit",
                "wetsuits",
                (180, 520),
                "A flexible {model} wetsuit with thin shoulder panels for a free stroke.",
            ),
            ProductType(
                "Kickboard", "training", (15, 35), "A firm {model} kickboard for focused leg sets."
            ),
        ),
        tags=("open-water", "pool", "training", "chlorine-resistant"),
        related=("yoga", "outdoor-living"),
    ),
    Category(
        key="outdoor-living",
        prefix="out",
        count=32,
        brands=("Campfire Supply", "Wildhaven", "Pinecrest", "Longevening"),
        models=("Lakeside", "Hearth", "Meadow", "Canyon", "Driftwood", "Starlight"),
        types=(
            ProductType(
                "Camp Chair",
                "furniture",
                (40, 140),
                "A folding {model} chair with a cup holder that packs into a shoulder bag.",
            ),
            ProductType(
                "Two-Person Tent",
                "tents",
                (160, 450),
                "The {model} tent pitches in five minutes and sleeps two with room for gear.",
            ),
            ProductType(
                "Sleeping Bag",
                "sleep",
                (80, 300),
                "A {model} sleeping bag rated to 0 C that compresses to the size of a melon.",
            ),
            ProductType(
                "Camp Stove",
                "cooking",
                (45, 160),
                "The {model} stove boils a litre of water in three minutes.",
            ),
            ProductType(
                "Cooler 30L",
                "cooking",
                (70, 260),
                "The {model} cooler keeps ice frozen for three days at the campsite.",
            ),
            ProductType(
                "String Lights",
                "lighting",
                (20, 60),
                "Warm-white {model} solar string lights for patios and campsites.",
            ),
            ProductType(
                "Hammock",
                "furniture",
                (35, 110),
                "A roomy {model} hammock with tree-friendly straps included.",
            ),
        ),
        tags=("camping", "garden", "family", "lightweight"),
        related=("hiking",),
    ),
)

SECOND_SENTENCES = (
    "Built to last season after season.",
    "Backed by our 60-day trial.",
    "Designed with feedback from our community.",
    "Made with recycled materials where it counts.",
    "A favourite of our staff.",
    "Pairs well with the rest of the range.",
)


def _title(
    rng: random.Random, category: Category, kind: ProductType, used: set[str]
) -> tuple[str, str]:
    """A unique "Model [generation] Noun" title and its model name."""
    for _ in range(100):
        model = rng.choice(category.models)
        generation = rng.randint(1, 5)
        title = f"{model} {generation} {kind.noun}" if generation > 1 else f"{model} {kind.noun}"
        if title not in used:
            used.add(title)
            return title, model
    raise RuntimeError(f"ran out of unique titles for {category.key}; add models")


def _tags(rng: random.Random, category: Category, kind: ProductType, is_new: bool) -> list[str]:
    tags = [kind.tag]
    vocabulary = [t for t in (*category.tags, *SHARED_TAGS) if t not in ("new", "sale")]
    for tag in rng.sample(vocabulary, rng.randint(1, 2)):
        if not {"women", "men"} <= {*tags, tag}:  # one audience per product
            tags.append(tag)
    if is_new:
        tags.append("new")
    elif rng.random() < 0.2:
        tags.append("sale")
    return tags[:4]


def _price(rng: random.Random, kind: ProductType) -> float:
    low, high = kind.price
    return float(rng.randint(low, high)) - 0.01  # shop-style prices: 89.99


def _item(rng: random.Random, category: Category, number: int, used: set[str]) -> dict[str, Any]:
    kind = rng.choice(category.types)
    title, model = _title(rng, category, kind, used)
    age_days = rng.uniform(0, CATALOG_DAYS)
    created_at = CATALOG_END - timedelta(days=age_days)
    is_new = age_days < NEW_WITHIN_DAYS
    categories = [category.key]
    if rng.random() < 0.25:
        categories.append(rng.choice(category.related))
    item_id = f"{category.prefix}-{number:03d}"
    return {
        "id": item_id,
        "type": "product",
        "title": title,
        "text": f"{kind.blurb.format(model=model)} {rng.choice(SECOND_SENTENCES)}",
        "url": f"/sample/items/{item_id}",
        "image": None,
        "categories": categories,
        "tags": _tags(rng, category, kind, is_new),
        "price": _price(rng, kind),
        "margin": round(rng.uniform(0.1, 0.5), 2),
        "in_stock": rng.random() < 0.95,
        "brand": rng.choice(category.brands),
        "created_at": created_at.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }


def generate_items(seed: int = SEED) -> list[dict[str, Any]]:
    """All sample items as JSON-ready dicts, in a stable order."""
    rng = random.Random(seed)
    items: list[dict[str, Any]] = []
    for category in CATEGORIES:
        used: set[str] = set()
        items.extend(_item(rng, category, n, used) for n in range(1, category.count + 1))
    return items


def write_items(path: Path, items: list[dict[str, Any]]) -> None:
    lines = (json.dumps(item, ensure_ascii=False) for item in items)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_OUTPUT
    items = generate_items()
    write_items(path, items)
    print(f"wrote {len(items)} items to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
