"""Write the taxonomy shipped in src/recmatch/text/data/taxonomy.json.xz from the O*NET text files: every occupation,
every reported and alternate title, the technology skills and the related occupations.

    python scripts/build_taxonomy.py [--onet-dir ../shared/data/onet]

The output carries O*NET's CC BY 4.0 credit (README "Data credits").
"""

from __future__ import annotations

from pathlib import Path

import typer

from recmatch.text.taxonomy import import_onet, shipped_taxonomy_path, write_taxonomy

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ONET_DIR = REPO_ROOT.parent / "shared" / "data" / "onet"
# Skills per occupation: the heaviest (hot and in-demand first); the long tail only adds noise and bytes.
MAX_SKILLS = 60


def main(
    onet_dir: Path = typer.Option(DEFAULT_ONET_DIR, help="directory with the O*NET text files"),
    out: Path = typer.Option(shipped_taxonomy_path(), help="where to write the taxonomy (.json or .json.xz)"),
) -> None:
    """Build the full taxonomy from O*NET."""
    taxonomy = import_onet(onet_dir, max_skills=MAX_SKILLS)
    write_taxonomy(taxonomy, out)
    typer.echo(f"wrote {len(taxonomy['occupations'])} occupations to {out} ({out.stat().st_size // 1024} KB)", err=True)


if __name__ == "__main__":
    typer.run(main)
