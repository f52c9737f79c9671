"""Write the demo taxonomy shipped in src/recmatch/text/data/taxonomy.json from the O*NET text files."""

from __future__ import annotations

from pathlib import Path

import typer

from recmatch.text.taxonomy import import_onet, shipped_taxonomy_path, write_taxonomy

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ONET_DIR = REPO_ROOT.parent / "shared" / "data" / "onet"

# Occupations a recruiting demo needs: tech, business, health care, engineering and a few everyday ones.
DEMO_CODES = (
    # software and IT
    "15-1252.00",  # Software Developers
    "15-1254.00",  # Web Developers
    "15-1255.00",  # Web and Digital Interface Designers
    "15-1253.00",  # Software Quality Assurance Analysts and Testers
    "15-2051.00",  # Data Scientists
    "15-1242.00",  # Database Administrators
    "15-1244.00",  # Network and Computer Systems Administrators
    "15-1241.00",  # Computer Network Architects
    "15-1212.00",  # Information Security Analysts
    "15-1211.00",  # Computer Systems Analysts
    "15-1232.00",  # Computer User Support Specialists
    "15-1299.09",  # Information Technology Project Managers
    "11-3021.00",  # Computer and Information Systems Managers
    # business, sales, marketing, people
    "13-1082.00",  # Project Management Specialists
    "11-2021.00",  # Marketing Managers (product managers live here)
    "13-1161.00",  # Market Research Analysts and Marketing Specialists
    "11-2022.00",  # Sales Managers
    "41-3091.00",  # Sales Representatives of Services
    "41-4012.00",  # Sales Representatives, Wholesale and Manufacturing
    "13-2011.00",  # Accountants and Auditors
    "13-2051.00",  # Financial and Investment Analysts
    "13-1111.00",  # Management Analysts
    "13-1071.00",  # Human Resources Specialists (recruiters)
    "11-3121.00",  # Human Resources Managers
    "11-1021.00",  # General and Operations Managers
    "43-4051.00",  # Customer Service Representatives
    "43-6014.00",  # Secretaries and Administrative Assistants
    # health care
    "29-1141.00",  # Registered Nurses
    "29-1171.00",  # Nurse Practitioners
    "29-2061.00",  # Licensed Practical and Licensed Vocational Nurses
    "31-1131.00",  # Nursing Assistants
    "29-1051.00",  # Pharmacists
    "29-2052.00",  # Pharmacy Technicians
    "11-9111.00",  # Medical and Health Services Managers
    # engineering and design
    "17-2141.00",  # Mechanical Engineers
    "17-2051.00",  # Civil Engineers
    "17-2071.00",  # Electrical Engineers
    "27-1024.00",  # Graphic Designers
    # logistics, education, legal
    "13-1081.00",  # Logisticians
    "11-3071.04",  # Supply Chain Managers
    "53-3032.00",  # Heavy and Tractor-Trailer Truck Drivers
    "25-2021.00",  # Elementary School Teachers
    "25-2031.00",  # Secondary School Teachers
    "23-1011.00",  # Lawyers
    "23-2011.00",  # Paralegals and Legal Assistants
)
MAX_ALT_TITLES = 150
MAX_SKILLS = 30


def main(
    onet_dir: Path = typer.Option(DEFAULT_ONET_DIR, help="directory with the O*NET text files"),
    out: Path = typer.Option(shipped_taxonomy_path(), help="where to write the taxonomy JSON"),
) -> None:
    """Build the demo taxonomy from O*NET."""
    taxonomy = import_onet(onet_dir, codes=DEMO_CODES, max_alt_titles=MAX_ALT_TITLES, max_skills=MAX_SKILLS)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_taxonomy(taxonomy, out)
    typer.echo(f"wrote {len(taxonomy['occupations'])} occupations to {out} ({out.stat().st_size // 1024} KB)", err=True)


if __name__ == "__main__":
    typer.run(main)
