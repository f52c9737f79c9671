"""Pydantic models shared by the API and the core."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints, model_validator

CandidateId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@\-]+$")]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
SkillName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

Seniority = Literal["entry", "junior", "mid", "senior", "lead", "manager", "director", "executive"]


class CandidateLocation(BaseModel):
    """Where a candidate lives: a name, and coordinates when known (else the name is geocoded)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    country: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")] | None = None
    region: Annotated[str, StringConstraints(max_length=100)] | None = None

    @model_validator(mode="after")
    def _coordinates_in_pairs(self) -> CandidateLocation:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together: give both or neither")
        if self.lat is None and not self.name:
            raise ValueError("a location needs a name or coordinates")
        return self


class CandidateIn(BaseModel):
    """One candidate as a source file line or an admin upsert gives it (DESIGN.md, "Candidate input")."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "candidate_id": "c-000123",
                    "name": "Ada Park",
                    "headline": "Backend engineer, payments",
                    "title": "Senior Software Engineer",
                    "company": "Acme Pay",
                    "past_titles": ["Software Engineer"],
                    "location": {"name": "Austin, TX, US", "lat": 30.2672, "lon": -97.7431, "country": "US"},
                    "skills": ["Python", "PostgreSQL", "Kubernetes"],
                    "years_experience": 8,
                    "open_to_work": True,
                    "open_to_remote": True,
                    "allow_export": True,
                    "profile_url": "https://example.org/in/ada-park",
                    "updated_at": "2026-11-20T10:00:00Z",
                }
            ]
        },
    )

    candidate_id: CandidateId
    name: ShortText
    title: ShortText
    headline: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None
    company: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    past_titles: list[ShortText] = Field(default_factory=list, max_length=30)
    location: CandidateLocation | None = None
    skills: list[SkillName] = Field(default_factory=list, max_length=100)
    years_experience: float | None = Field(default=None, ge=0, le=70)
    seniority: Seniority | None = None
    open_to_work: bool = False
    open_to_remote: bool = False
    # Export shares a profile with a CRM: only when the candidate said yes.
    allow_export: bool = False
    profile_url: AnyHttpUrl | None = None
    updated_at: datetime | None = None


# -- pipelines -----------------------------------------------------------------------------------------

PipelineId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]
LocationText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class PipelineIn(BaseModel):
    """A talent pipeline as the CRM syncs it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Senior Backend Engineer",
                    "locations": ["Austin, TX", "Remote"],
                    "skills": ["Python", "PostgreSQL", "Kubernetes"],
                    "remote_ok": True,
                    "radius_km": 50,
                    "access_restricted": False,
                    "owner_email": "rita.recruiter@example.com",
                }
            ]
        },
    )

    title: ShortText = Field(description="the job title, 1–200 characters")
    locations: list[LocationText] = Field(default_factory=list, max_length=10, description="at most 10 places")
    skills: list[SkillName] = Field(default_factory=list, max_length=50, description="at most 50 skills")
    remote_ok: bool = Field(default=False, description="remote candidates qualify wherever they live")
    radius_km: float = Field(default=50, ge=1, le=500, description="search radius around each location, 1–500 km")
    access_restricted: bool = Field(default=False, description="visible to its owner and admins only")
    owner_email: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
        | None
    ) = None
