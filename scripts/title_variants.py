"""Ways a recruiter might type a job title, for the relevance evaluation and the understanding benchmark."""

from __future__ import annotations

from random import Random

VARIANTS = ("as is", "seniority", "abbreviated", "inverted", "case", "transposed", "spacing")
ABBREVIATIONS = {
    "manager": "Mgr", "senior": "Sr.", "assistant": "Asst.", "engineer": "Engr", "director": "Dir.",
    "coordinator": "Coord.", "representative": "Rep", "specialist": "Spec.", "administrator": "Admin",
    "technician": "Tech", "supervisor": "Supv", "developer": "Dev", "department": "Dept.", "operations": "Ops",
    "maintenance": "Maint.", "administrative": "Admin", "registered nurse": "RN", "executive": "Exec",
    "marketing": "Mktg", "management": "Mgmt", "information technology": "IT", "human resources": "HR",
}


def title_variant(title: str, rng: Random) -> tuple[str, str]:
    """A way a recruiter might type TITLE, and which kind of variant it is."""
    kind = rng.choice(VARIANTS)
    words = title.split()
    if kind == "seniority":
        return f"{rng.choice(('Senior', 'Sr.', 'Junior', 'Lead', 'Principal'))} {title}", kind
    if kind == "abbreviated":
        lowered = title.lower()
        found = [long for long in ABBREVIATIONS if long in lowered.split() or (" " in long and long in lowered)]
        if found:
            long = rng.choice(sorted(found))
            start = lowered.index(long)
            return title[:start] + ABBREVIATIONS[long] + title[start + len(long):], kind
        return f"Sr. {title}", kind
    if kind == "inverted" and len(words) >= 2:
        return f"{words[-1]}, {' '.join(words[:-1])}", kind
    if kind == "case":
        return (title.upper() if rng.random() < 0.5 else title.lower()), kind
    if kind == "transposed":
        longest = max(range(len(words)), key=lambda i: len(words[i]))
        word = words[longest]
        if len(word) >= 5:
            at = rng.randrange(1, len(word) - 2)
            words[longest] = word[:at] + word[at + 1] + word[at] + word[at + 2:]
            return " ".join(words), kind
    if kind == "spacing":
        if len(words) >= 2 and rng.random() < 0.5:  # a space dropped or moved: "School Cook" -> "schoolcook"
            at = rng.randrange(len(words) - 1)
            left, right = words[at], words[at + 1]
            if rng.random() < 0.5 and len(left) > 3:
                joined = [left[:-1], left[-1] + right]
            else:
                joined = [left + right.lower()]
            return " ".join(words[:at] + joined + words[at + 2:]), kind
        longest = max(range(len(words)), key=lambda i: len(words[i]))
        word = words[longest]
        if len(word) >= 8:  # a space added inside a long word
            at = rng.randrange(3, len(word) - 3)
            words[longest] = word[:at] + " " + word[at:]
            return " ".join(words), kind
    return title, "as is"
