"""Text normalisation shared by indexing and querying: accents, punctuation, plurals, abbreviations, skill aliases.

Elasticsearch here runs with core analysis only (no stemmer, synonym or asciifolding filters), so both sides of a
match pass through these functions: a candidate's title and skills before indexing, a pipeline's before querying.
Everything is pure, deterministic and idempotent.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from recmatch.core.models import Seniority

__all__ = [
    "TITLE_STOPWORDS",
    "display_skill",
    "fold",
    "normalize_skill",
    "normalize_title",
    "singular",
    "stated_seniority",
]

# --- fold ---------------------------------------------------------------------------------------------------------

# UTF-8 read as cp1252, the usual damage in scraped job data; used when the cheap round trip fails.
_MOJIBAKE = {
    "â€™": "'",
    "â€˜": "'",
    "â€œ": '"',
    "â€\x9d": '"',
    "â€": '"',
    "â€“": "-",
    "â€”": "-",
    "â€¦": "...",
    "Â\xa0": " ",
}
_MOJIBAKE_RE = re.compile("|".join(re.escape(bad) for bad in sorted(_MOJIBAKE, key=len, reverse=True)))

# Letters NFKD does not decompose into ASCII.
_SPECIAL_LETTERS = str.maketrans(
    {"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "þ": "th", "æ": "ae", "Æ": "AE",
     "œ": "oe", "Œ": "OE", "ı": "i", "ß": "ss"}
)
_APOSTROPHES_RE = re.compile("['\u2019\u2018`\u00b4\u02bc]")
_DOTTED_ACRONYM_RE = re.compile(r"(?<![\w.])[a-z](?:\.[a-z])+\.?(?!\w)")  # u.s. -> us, v.p. -> vp
_LETTER_HYPHEN_RE = re.compile(r"(?<![\w-])([a-z])-(?=[a-z]{2})")  # e-commerce -> ecommerce
_SHORT_AMPERSAND_RE = re.compile(r"(?<![\w&])([a-z0-9]{1,2})\s*&\s*([a-z0-9]{1,2})(?![\w&])")  # r & d -> r&d
_AMPERSAND_RE = re.compile(r"(?<![\w&])[a-z0-9]{1,3}(?:&[a-z0-9]{1,3})+(?![\w&])|&")  # at&t stays, else "and"
# One token: the forms that need their punctuation first, then any run of letters/digits (any script).
_TOKEN_RE = re.compile(
    r"(?:[a-z0-9]+)?\.(?:net|js)\b"  # .net, asp.net, node.js, vue.js
    r"|[a-z]#"  # c#, f#
    r"|[a-z0-9]+\+\+"  # c++, notepad++
    r"|[a-z0-9]{1,3}(?:[/&][a-z0-9]{1,3})+(?![\w/&])"  # ci/cd, tcp/ip, ui/ux, r&d, at&t
    r"|[^\W_]+"
)


def _repair_mojibake(text: str) -> str:
    if "â" not in text and "Ã" not in text and "Â" not in text:
        return text
    try:
        return text.encode("cp1252").decode("utf-8")
    except UnicodeError:
        return _MOJIBAKE_RE.sub(lambda match: _MOJIBAKE[match.group(0)], text)


@lru_cache(maxsize=32_768)
def fold(text: str) -> str:
    """Lowercase ASCII-folded text, punctuation turned into spaces except inside tokens like c++, c#, .net, ci/cd."""
    text = _repair_mojibake(text)
    text = unicodedata.normalize("NFKD", text.translate(_SPECIAL_LETTERS))
    text = "".join(char for char in text if not unicodedata.combining(char)).casefold()
    text = _APOSTROPHES_RE.sub("", text)
    text = _DOTTED_ACRONYM_RE.sub(lambda match: match.group(0).replace(".", ""), text)
    text = _LETTER_HYPHEN_RE.sub(r"\1", text)
    text = _SHORT_AMPERSAND_RE.sub(r"\1&\2", text)
    text = _AMPERSAND_RE.sub(lambda match: match.group(0) if len(match.group(0)) > 1 else " and ", text)
    return " ".join(_TOKEN_RE.findall(text))


# --- singular -----------------------------------------------------------------------------------------------------

# Words ending in s that are not plurals (or whose plural reading would mangle a name).
_SINGULAR_KEEP = frozenset(
    """
    sales news series species kubernetes aws ios macos os us gis sas dos jenkins pandas windows rails numpy scipy
    physics economics status alias atlas canvas bias gas texas kansas arkansas vegas christmas lens chaos ethos
    thanks diabetes headquarters means corps postgres saas paas iaas devops mlops secops devsecops dataops aiops
    finops gitops sysops biz plus always perhaps whereas molasses pilates telesales presales asbestos forceps
    scissors upstairs downstairs plexiglas customs mems dbms usps himars
    """.split()
)
# Plurals the suffix rules get wrong.
_SINGULAR_IRREGULAR = {
    "analyses": "analysis", "diagnoses": "diagnosis", "crises": "crisis", "theses": "thesis", "bases": "base",
    "hypotheses": "hypothesis", "prognoses": "prognosis", "statuses": "status", "campuses": "campus",
    "viruses": "virus", "bonuses": "bonus", "buses": "bus", "censuses": "census", "corpuses": "corpus",
    "gases": "gas", "aliases": "alias", "biases": "bias", "lenses": "lens", "caches": "cache", "niches": "niche",
    "movies": "movie", "cookies": "cookie", "rookies": "rookie", "calories": "calorie", "goalies": "goalie",
    "heroes": "hero", "potatoes": "potato", "tomatoes": "tomato", "echoes": "echo", "vetoes": "veto",
    "mechanics": "mechanic", "paramedics": "paramedic", "medics": "medic", "critics": "critic",
    "clinics": "clinic", "comics": "comic", "topics": "topic", "fabrics": "fabric", "men": "man", "women": "woman",
}
_VOWELS_RE = re.compile("[aeiouy]")
_MEN_NOT_PLURAL = frozenset("specimen abdomen regimen acumen stamen semen hymen yemen bitumen albumen lumen".split())


def _singular_once(word: str) -> str:
    irregular = _SINGULAR_IRREGULAR.get(word)
    if irregular is not None:
        return irregular
    if len(word) <= 3 or word in _SINGULAR_KEEP or not word.isalpha():
        return word
    if word.endswith("men"):
        return word if word in _MEN_NOT_PLURAL else word[:-3] + "man"
    if not word.endswith("s") or word.endswith(("ss", "us", "is", "ics", "aas", "js")):
        return word
    if not _VOWELS_RE.search(word[:-1]):
        return word  # an acronym like "dbms"
    if word.endswith("ies"):
        return word[:-3] + "y" if len(word) > 4 else word[:-1]
    if word.endswith(("sses", "xes", "ches", "shes", "zzes")):
        return word[:-2]
    return word[:-1]


def singular(word: str) -> str:
    """Conservative English plural folding of one lowercase word (engineers -> engineer, sales stays sales)."""
    folded = _singular_once(word)
    # "mens" (from "men's") -> "men" -> "man": fold until stable so that singular(singular(w)) == singular(w).
    while (again := _singular_once(folded)) != folded:
        folded = again
    return folded


# --- titles -------------------------------------------------------------------------------------------------------

TITLE_STOPWORDS = frozenset("of and the for in a an to at on with".split())

# Abbreviation -> expansion, looked up after singular(); expansions are full words so a second pass keeps them.
_TITLE_ABBREVIATIONS = {
    "sr": "senior", "snr": "senior", "jr": "junior", "jnr": "junior",
    "mgr": "manager", "mngr": "manager", "mgmt": "management", "mgmnt": "management", "mgt": "management",
    "engr": "engineer", "engg": "engineer", "asst": "assistant", "assoc": "associate", "dir": "director",
    "vp": "vice president", "svp": "senior vice president", "evp": "executive vice president",
    "avp": "assistant vice president", "gm": "general manager", "ceo": "chief executive officer",
    "cfo": "chief financial officer", "cto": "chief technology officer", "coo": "chief operating officer",
    "cio": "chief information officer", "cmo": "chief marketing officer", "ciso": "chief information security officer",
    "exec": "executive", "coord": "coordinator", "spec": "specialist", "rep": "representative",
    "supv": "supervisor", "supvr": "supervisor", "supvsr": "supervisor", "prin": "principal",
    "ops": "operations", "qa": "quality assurance", "qc": "quality control", "hr": "human resources",
    "it": "information technology", "infosec": "information security", "rn": "registered nurse",
    "lpn": "licensed practical nurse", "lvn": "licensed vocational nurse", "cna": "certified nursing assistant",
    "np": "nurse practitioner", "cpa": "certified public accountant", "swe": "software engineer",
    "sde": "software development engineer", "sdet": "software development engineer in test",
    "sre": "site reliability engineer", "dba": "database administrator", "sysadmin": "system administrator",
    "ml": "machine learning", "ai": "artificial intelligence", "bi": "business intelligence", "db": "database",
    "sw": "software", "hw": "hardware", "sys": "system", "prog": "programmer", "bd": "business development",
    "bdr": "business development representative", "sdr": "sales development representative",
    "csr": "customer service representative", "svc": "service", "cust": "customer", "mktg": "marketing",
    "acctg": "accounting", "lab": "laboratory", "med": "medical", "pharm": "pharmacy", "mech": "mechanical",
    "elec": "electrical", "env": "environmental", "govt": "government", "intl": "international",
    "natl": "national", "dept": "department", "mfg": "manufacturing", "whse": "warehouse", "maint": "maintenance",
    "backend": "back end", "frontend": "front end", "fullstack": "full stack",
}
_MANAGING_WORDS = frozenset("manager mgr director dir lead head vp team".split())
_OFFICE_WORDS = frozenset(
    "assistant asst support coordinator coord clerk specialist spec officer secretary aide staff".split()
)
_ACCOUNT_WORDS = frozenset(
    "manager mgr executive exec representative rep director dir coordinator coord specialist spec supervisor".split()
)
_TECHNICAL_WORDS = frozenset(
    "lead support writer director dir manager mgr architect specialist spec recruiter sale sales consultant".split()
)
_DEVELOPMENT_NEXT = frozenset(
    "manager mgr director dir representative rep executive exec officer specialist spec coordinator coord".split()
)
_DEVELOPMENT_PREVIOUS = frozenset("business biz bd product".split())
_ROMAN_LEVELS = frozenset("i ii iii iv v vi vii viii ix x".split())
_LEVEL_WORDS = frozenset(("level", "lvl"))
_LEVEL_TOKEN_RE = re.compile(r"\d{1,2}|l[1-9]")


def _expand(tokens: list[str], index: int) -> str:
    token = tokens[index]
    following = tokens[index + 1] if index + 1 < len(tokens) else ""
    previous = tokens[index - 1] if index > 0 else ""
    if token == "admin":
        return "administrative" if following in _OFFICE_WORDS else "administrator"
    if token == "tech":
        return "technical" if following in _TECHNICAL_WORDS else "technician"
    if token == "acct":
        return "account" if following in _ACCOUNT_WORDS else "accountant"
    if token == "eng":
        return "engineering" if following in _MANAGING_WORDS else "engineer"
    if token == "dev":
        if previous in _DEVELOPMENT_PREVIOUS or following in _DEVELOPMENT_NEXT:
            return "development"
        return "developer"
    return _TITLE_ABBREVIATIONS.get(token, token)


def _is_level(token: str) -> bool:
    return token in _ROMAN_LEVELS or _LEVEL_TOKEN_RE.fullmatch(token) is not None


def _drop_levels(tokens: list[str]) -> list[str]:
    kept: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token in _LEVEL_WORDS and index + 1 < len(tokens) and _is_level(tokens[index + 1]):
            index += 2  # "level 2", "level ii"
            continue
        if _LEVEL_TOKEN_RE.fullmatch(token) and token.startswith("l"):
            index += 1  # "l2 support"
            continue
        kept.append(token)
        index += 1
    while kept and _is_level(kept[-1]):
        kept.pop()  # trailing "ii", "iii", "3"
    return kept


@lru_cache(maxsize=32_768)  # a reindex meets each title once: indexing.documents caches the whole reading
def normalize_title(title: str) -> str:
    """Folded job title with abbreviations expanded, level suffixes dropped and each word singular."""
    folded = fold(title).split()
    if not folded:
        return ""
    merged: list[str] = []
    for token in folded:
        if token == "ops" and merged and merged[-1] == "dev":
            merged[-1] = "devops"  # "Dev Ops Engineer"
        else:
            merged.append(singular(token))
    expanded = " ".join(_expand(merged, index) for index in range(len(merged))).split()
    tokens = [singular(token) for token in expanded]
    kept = _drop_levels(tokens)
    return " ".join(kept or tokens)


# --- skills -------------------------------------------------------------------------------------------------------

# Normalised alias -> canonical normalised skill. Keys and values are already in fold() form.
_SKILL_ALIASES = {
    "js": "javascript", "ecmascript": "javascript", "ts": "typescript",
    "node": "node.js", "nodejs": "node.js", "react.js": "react", "reactjs": "react", "vue": "vue.js",
    "vuejs": "vue.js", "google angular": "angular", "dotnet": ".net", "microsoft .net framework": ".net",
    ".net framework": ".net", "csharp": "c#", "c sharp": "c#", "cpp": "c++", "golang": "go",
    "postgres": "postgresql", "psql": "postgresql", "k8s": "kubernetes", "amazon web services": "aws",
    "google cloud platform": "gcp", "google cloud": "gcp", "azure": "microsoft azure", "ms azure": "microsoft azure",
    "excel": "microsoft excel", "ms excel": "microsoft excel", "ms word": "microsoft word",
    "powerpoint": "microsoft powerpoint", "ms powerpoint": "microsoft powerpoint", "outlook": "microsoft outlook",
    "ms outlook": "microsoft outlook", "ms office": "microsoft office", "office 365": "microsoft 365",
    "ms project": "microsoft project", "ms access": "microsoft access", "sharepoint": "microsoft sharepoint",
    "ms sql server": "microsoft sql server", "mssql": "microsoft sql server", "sql server": "microsoft sql server",
    "oracle java": "java", "atlassian jira": "jira", "atlassian confluence": "confluence", "jenkins ci": "jenkins",
    "ibm terraform": "terraform", "hashicorp terraform": "terraform", "html5": "html", "css3": "css",
    "extensible markup language xml": "xml", "rest api": "restful api", "rest": "restful api",
    "tableau": "tableau", "salesforce.com": "salesforce", "sfdc": "salesforce", "power bi": "microsoft power bi",
    "ms power bi": "microsoft power bi", "epic": "epic systems", "linux os": "linux", "unix os": "unix",
}
_SKILL_STOPWORDS = frozenset(("for", "of", "and", "the"))
_SOFTWARE_SUFFIX_RE = re.compile(r"(?<=\S)\s+software\s*$", re.IGNORECASE)
_ACRONYM_RE = re.compile(r"[A-Z][A-Z0-9]{1,5}")


def _is_subsequence(needle: str, haystack: str) -> bool:
    remaining = iter(haystack)
    return all(char in remaining for char in needle)


def _trailing_acronym(text: str) -> str | None:
    """The trailing acronym of "Structured query language SQL" when it abbreviates the words before it."""
    words = text.split()
    if len(words) < 2 or _ACRONYM_RE.fullmatch(words[-1]) is None:
        return None
    acronym = words[-1].lower()
    phrase = [word.lower() for word in words[:-1] if word.lower() not in _SKILL_STOPWORDS and word.isalpha()]
    for start in range(len(phrase) - 1, -1, -1):
        suffix = phrase[start:]
        initials = "".join(word[0] for word in suffix)
        if (
            acronym[0] == suffix[0][0]
            and len(suffix) >= 2
            and _is_subsequence(initials, acronym)
            and _is_subsequence(acronym, "".join(suffix))
        ):
            return words[-1]
    return None


def display_skill(skill: str) -> str:
    """The skill as people write it: "Structured query language SQL" -> "SQL", "SAP software" -> "SAP"."""
    text = " ".join(skill.split())
    text = _SOFTWARE_SUFFIX_RE.sub("", text)
    return _trailing_acronym(text) or text


@lru_cache(maxsize=131_072)
def normalize_skill(skill: str) -> str:
    """Folded skill with " software" dropped, spelled-out acronyms collapsed and known aliases unified."""
    folded = fold(display_skill(skill))
    return _SKILL_ALIASES.get(folded, folded)


# --- seniority ------------------------------------------------------------------------------------------------------

# Title words that say the level outright, strongest first.
_SENIORITY_MARKERS: tuple[tuple[Seniority, frozenset[str]], ...] = (
    ("executive", frozenset({"chief", "ceo", "cto", "cfo", "coo", "president", "vice"})),
    ("director", frozenset({"director", "head"})),
    ("manager", frozenset({"manager"})),
    ("lead", frozenset({"lead", "principal", "staff", "architect"})),
    ("senior", frozenset({"senior"})),
    ("junior", frozenset({"junior", "associate"})),
    ("entry", frozenset({"intern", "trainee", "apprentice", "graduate", "entry"})),
)



def stated_seniority(title_norm: str) -> Seniority | None:
    """The level a normalised title states in words ("senior", "lead", "manager"), if any."""
    words = set(title_norm.split())
    for level, markers in _SENIORITY_MARKERS:
        if words & markers:
            return level
    return None
