"""Load recmatch's Kibana saved objects (data views, the hiring-signals dashboard, dead deliveries) into a Kibana."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from recmatch.core.errors import RecmatchError

DEFAULT_PREFIX = "recmatch"  # the index prefix the shipped objects are written for
DEFAULT_OBJECTS = Path(__file__).resolve().parents[3] / "kibana" / "recmatch.ndjson"
ERROR_BODY_CHARS = 300
RETRY_PAUSE_S = 3.0


class KibanaUnavailable(RecmatchError):
    """Kibana cannot be reached, or is not ready yet."""

    status_code = 503


class KibanaImportFailed(RecmatchError):
    """Kibana refused the import, or some objects in it (listed in `errors`)."""

    status_code = 502

    def __init__(self, detail: str, *, errors: list[ObjectError] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


@dataclass(frozen=True)
class ObjectError:
    """One saved object Kibana did not import, and why."""

    type: str
    id: str
    title: str | None
    kind: str  # Kibana's error type: conflict, missing_references, unsupported_type, unknown, ...
    reason: str

    def describe(self) -> str:
        name = f"{self.type} {self.id}" + (f" ({self.title})" if self.title else "")
        return f"{name}: {self.reason}"


@dataclass(frozen=True)
class ImportResult:
    """What Kibana said about an import."""

    imported: list[tuple[str, str]] = field(default_factory=list)  # (type, id)
    kept: list[tuple[str, str]] = field(default_factory=list)  # already there, left alone (overwrite=False)

    def describe(self) -> str:
        parts = [f"{len(self.imported)} saved objects imported"]
        if self.kept:
            parts.append(f"{len(self.kept)} already there and kept")
        return ", ".join(parts)


# -- the objects, for another index prefix (pure) ----------------------------------------------------------


def read_objects(path: Path) -> list[dict[str, Any]]:
    """The saved objects of an NDJSON file, one per non-empty line."""
    objects = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                objects.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise KibanaImportFailed(f"{path}:{number} is not JSON: {exc.msg}") from None
    return objects


def _renamed(text: str, prefix: str) -> str:
    """recmatch-events → <prefix>-events (ids and index names); anything else unchanged."""
    if text == DEFAULT_PREFIX or text.startswith(f"{DEFAULT_PREFIX}-"):
        return prefix + text[len(DEFAULT_PREFIX):]
    return text


def _retitled(title: str, prefix: str) -> str:
    if title.startswith(DEFAULT_PREFIX):
        return prefix + title[len(DEFAULT_PREFIX):]
    return f"{title} ({prefix})"


def _rename_references(references: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [{**reference, "id": _renamed(reference["id"], prefix)} for reference in references]


def for_prefix(objects: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The objects for indices under PREFIX: index names, ids (so deployments sit side by side) and titles."""
    if prefix == DEFAULT_PREFIX:
        return objects
    renamed = []
    for saved in objects:
        saved = json.loads(json.dumps(saved))  # a deep copy: the caller's objects stay as they were
        attributes = saved.setdefault("attributes", {})
        saved["id"] = _renamed(saved["id"], prefix)
        saved["references"] = _rename_references(saved.get("references", []), prefix)
        if saved["type"] == "index-pattern":
            attributes["title"] = _renamed(attributes["title"], prefix)
            if "name" in attributes:
                attributes["name"] = _retitled(attributes["name"], prefix)
        elif "title" in attributes:
            attributes["title"] = _retitled(attributes["title"], prefix)
        if saved["type"] == "dashboard" and "panelsJSON" in attributes:
            panels = json.loads(attributes["panelsJSON"])
            for panel in panels:
                inline = panel.get("embeddableConfig", {}).get("attributes")
                if inline and "references" in inline:  # a by-value panel carries its own references
                    inline["references"] = _rename_references(inline["references"], prefix)
            attributes["panelsJSON"] = json.dumps(panels, ensure_ascii=False, separators=(",", ":"))
        renamed.append(saved)
    return renamed


def to_ndjson(objects: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(saved, ensure_ascii=False, separators=(",", ":")) + "\n" for saved in objects).encode()


# -- the import ----------------------------------------------------------------------------------------------


def _object_error(entry: dict[str, Any]) -> ObjectError:
    error = entry.get("error") or {}
    kind = str(error.get("type", "unknown"))
    if kind == "missing_references":
        missing = ", ".join(f"{ref.get('type')} {ref.get('id')}" for ref in error.get("references", []))
        reason = f"missing references: {missing}"
    elif kind == "conflict":
        reason = "already exists (import with overwrite to replace it)"
    elif kind == "unsupported_type":
        reason = "this Kibana does not know this type of object"
    else:
        reason = str(error.get("message") or error.get("reason") or kind)
    title = entry.get("title") or (entry.get("meta") or {}).get("title")
    return ObjectError(type=str(entry.get("type")), id=str(entry.get("id")), title=title, kind=kind, reason=reason)


def _refusal(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:ERROR_BODY_CHARS].strip() or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:ERROR_BODY_CHARS]
    return str(body)[:ERROR_BODY_CHARS]


def import_saved_objects(
    *,
    url: str,
    objects: Path = DEFAULT_OBJECTS,
    api_key: str | None = None,
    username: str | None = None,
    password: str | None = None,
    prefix: str = DEFAULT_PREFIX,
    space: str | None = None,
    overwrite: bool = True,
    wait: float = 0.0,
    timeout: float = 30.0,
) -> ImportResult:
    """POST the objects to Kibana's saved-objects import API; waits up to `wait` s for Kibana to be ready."""
    if (username is None) != (password is None):
        raise KibanaImportFailed("give both a Kibana username and password, or neither")
    if api_key is not None and username is not None:
        raise KibanaImportFailed("give a Kibana API key or a username and password, not both")
    body = to_ndjson(for_prefix(read_objects(objects), prefix))
    base = url.rstrip("/") + (f"/s/{space}" if space else "")
    endpoint = f"{base}/api/saved_objects/_import"
    headers = {"kbn-xsrf": "recmatch"}
    if api_key is not None:
        headers["Authorization"] = f"ApiKey {api_key}"
    auth = httpx.BasicAuth(username, password) if username is not None and password is not None else None
    deadline = time.monotonic() + wait
    while True:
        try:
            response = httpx.post(endpoint, params={"overwrite": str(overwrite).lower()}, headers=headers, auth=auth,
                                  files={"file": ("recmatch.ndjson", body, "application/ndjson")}, timeout=timeout)
        except httpx.HTTPError as exc:
            problem = f"Kibana is unreachable at {url}: {type(exc).__name__}: {exc}".rstrip(": ")
        else:
            if response.status_code != 503:
                break
            problem = f"Kibana at {url} is not ready yet (503: {_refusal(response)})"
        if time.monotonic() + RETRY_PAUSE_S > deadline:
            raise KibanaUnavailable(problem, retry_after=int(RETRY_PAUSE_S))
        time.sleep(RETRY_PAUSE_S)

    if response.status_code in (401, 403):
        raise KibanaImportFailed(f"Kibana refused the credentials ({response.status_code}): {_refusal(response)}")
    if not response.is_success:
        raise KibanaImportFailed(f"Kibana refused the import ({response.status_code} {response.reason_phrase}): "
                                 f"{_refusal(response)}")
    try:
        answer = response.json()
    except ValueError:
        raise KibanaImportFailed(f"{endpoint} did not answer JSON; is {url} a Kibana?") from None
    if not isinstance(answer, dict) or "success" not in answer:
        raise KibanaImportFailed(f"{endpoint} answered something that is not an import result; is {url} a Kibana?")
    imported = [(str(entry.get("type")), str(entry.get("id"))) for entry in answer.get("successResults", [])]
    errors = [_object_error(entry) for entry in answer.get("errors", [])]
    kept = [(error.type, error.id) for error in errors if error.kind == "conflict" and not overwrite]
    errors = [error for error in errors if not (error.kind == "conflict" and not overwrite)]
    if errors:
        listed = "; ".join(error.describe() for error in errors)
        raise KibanaImportFailed(f"Kibana imported {answer.get('successCount', len(imported))} objects but not "
                                 f"{len(errors)}: {listed}", errors=errors)
    return ImportResult(imported=imported, kept=kept)
