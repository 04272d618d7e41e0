"""The resource-generic part of the commercetools sandbox: find, query, expand, update, delete."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ct_sandbox import db
from ct_sandbox.commercetools.common import (
    _EXPAND,
    _SYNTHETIC,
    _VAR,
    MAX_ACTIONS,
    MAX_LIMIT,
    MAX_OFFSET,
    SIDE,
    TYPE_ID_RESOURCES,
    ActionHandler,
    ApiError,
    Json,
    Request,
    Response,
    _check_key,
    _is_reference,
    _json_response,
    _optional,
    _require,
    invalid_input,
    invalid_json,
    invalid_operation,
    not_found,
)
from ct_sandbox.documents import (
    DocumentNotFound,
    DocumentStore,
    DuplicateDocument,
    VersionConflict,
)
from ct_sandbox.faults import FaultConfig, draw_fault
from ct_sandbox.predicates import (
    CompiledPredicate,
    PredicateError,
    RootMapping,
    compile_sort,
    compile_where,
)


class SandboxCore:
    """State and the resource-generic API: reading, references, create/update/delete."""

    db_path: str
    project_key: str
    token_ttl_seconds: int
    enforce_scopes: bool
    currencies: tuple[str, ...]  # the project's currencies
    store: DocumentStore
    _clock: Callable[[], datetime]
    _actions: dict[str, dict[str, ActionHandler]]

    def _now(self) -> str:
        return db.format_timestamp(self._clock())

    # -- reading -----------------------------------------------------------------------------

    def _find(self, resource: str, identifier: str, *, for_update: bool = False) -> Json:
        doc: Json | None
        if identifier.startswith("key="):
            doc = self.store.get_by(resource, "key", identifier[4:])
        elif identifier.startswith("order-number=") and resource == "orders":
            doc = self.store.get_by(resource, "orderNumber", identifier[len("order-number=") :])
        else:
            doc = self.store.get(resource, identifier)
        if doc is None:
            raise not_found(f"The Resource with ID '{identifier}' was not found.")
        return doc

    def _int_param(self, request: Request, name: str, default: int, low: int, high: int) -> int:
        text = request.param(name)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise invalid_input(
                f"The parameter '{name}' must be an integer, got '{text}'."
            ) from None
        if not low <= value <= high:
            raise invalid_input(
                f"The parameter '{name}' must be between {low} and {high}, got {value}.",
                field=name,
            )
        return value

    def _bool_param(self, request: Request, name: str, default: bool) -> bool:
        text = request.param(name)
        if text is None:
            return default
        if text not in ("true", "false"):
            raise invalid_input(f"The parameter '{name}' must be true or false, got '{text}'.")
        return text == "true"

    def _variables(self, request: Request) -> dict[str, str]:
        variables: dict[str, str] = {}
        for name, values in request.query.items():
            if name.startswith("var"):
                if not _VAR.match(name):
                    raise invalid_input(f"Invalid input variable name '{name}'.")
                variables[name[4:]] = values[0]
        return variables

    def _expansions(self, request: Request) -> list[str]:
        paths = request.query.get("expand", [])
        for path in paths:
            if not _EXPAND.match(path):
                raise invalid_input(
                    f"Invalid expansion path '{path}': use dotted field names and [*] for arrays."
                )
        return paths

    def _query(
        self,
        request: Request,
        resource: str,
        mapping: RootMapping,
        base_filter: tuple[CompiledPredicate, ...],
        transform: Callable[[Json], Json] | None = None,
    ) -> Response:
        limit = self._int_param(request, "limit", 20, 1, MAX_LIMIT)
        offset = self._int_param(request, "offset", 0, 0, MAX_OFFSET)
        with_total = self._bool_param(request, "withTotal", True)
        expand = self._expansions(request)
        wheres = request.query.get("where", [])
        try:
            compiled = compile_where(wheres, self._variables(request), mapping)
            sort = compile_sort(request.query.get("sort", []), mapping)
        except PredicateError as error:
            raise invalid_input(f"Malformed parameter: {error}") from None
        where = (*base_filter, compiled) if compiled is not None else base_filter
        page = self.store.query(
            resource,
            where=where,
            sort=sort,
            limit=limit,
            offset=offset,
            with_total=with_total,
            total_cap=MAX_OFFSET if wheres else None,
        )
        if transform is None:
            # Splice stored JSON: paging 25,000 orders must not parse every document twice. Only
            # documents that hold a field an expansion starts with are parsed and re-encoded.
            markers = [f'"{path.split(".")[0].removesuffix("[*]")}":' for path in expand]
            parts = list(page.bodies)
            parsed = {
                index: json.loads(body)
                for index, body in enumerate(parts)
                if any(marker in body for marker in markers)
            }
            self._expand(list(parsed.values()), expand)  # one look-up per resource and page
            for index, doc in parsed.items():
                parts[index] = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
            results = ("[" + ",".join(parts) + "]").encode("utf-8")
        else:
            docs = [transform(json.loads(body)) for body in page.bodies]
            self._expand(docs, expand)
            results = json.dumps(docs, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        head = {"limit": limit, "offset": offset, "count": len(page.bodies)}
        if page.total is not None:
            head["total"] = page.total
        prefix = json.dumps(head, separators=(",", ":"))[:-1].encode("utf-8")
        return Response(200, prefix + b',"results":' + results + b"}")

    def _document_response(
        self, status: int, resource: str, doc: Json, request: Request
    ) -> Response:
        self._expand([doc], self._expansions(request))
        return _json_response(status, doc)

    def _expand(self, docs: list[Json], paths: list[str]) -> None:
        for path in paths:
            frontier: list[Any] = list(docs)
            for segment in path.split("."):
                name, star = (segment[:-3], True) if segment.endswith("[*]") else (segment, False)
                found: list[Any] = []
                for node in frontier:
                    if _is_reference(node) and isinstance(node.get("obj"), dict):
                        node = node["obj"]
                    if not isinstance(node, dict) or node.get(name) is None:
                        continue
                    value = node[name]
                    if star and isinstance(value, list):
                        found.extend(value)
                    elif not star and not isinstance(value, list):
                        found.append(value)
                self._resolve_references([n for n in found if _is_reference(n)])
                frontier = found

    def _resolve_references(self, references: list[Json]) -> None:
        by_resource: dict[str, list[Json]] = {}
        for ref in references:
            resource = TYPE_ID_RESOURCES.get(ref["typeId"])
            if resource is not None and "obj" not in ref:
                by_resource.setdefault(resource, []).append(ref)
        for resource, refs in by_resource.items():
            loaded = self.store.get_many(resource, (str(r["id"]) for r in refs))
            for ref in refs:
                if ref["id"] in loaded:
                    ref["obj"] = copy.deepcopy(loaded[ref["id"]])

    # -- references --------------------------------------------------------------------------

    def _reference(self, identifier: Any, type_id: str, where: str) -> Json:
        """Resolve a ResourceIdentifier ({typeId, id | key}) to a stored document."""
        if not isinstance(identifier, dict):
            raise invalid_json(f"{where}: expected a resource identifier")
        if identifier.get("typeId", type_id) != type_id:
            raise invalid_input(f"{where}: expected typeId '{type_id}'.")
        resource = TYPE_ID_RESOURCES[type_id]
        if identifier.get("id") is not None:
            doc = self.store.get(resource, str(identifier["id"]))
        elif identifier.get("key") is not None:
            doc = self.store.get_by(resource, "key", str(identifier["key"]))
        else:
            raise invalid_input(f"{where}: a resource identifier needs 'id' or 'key'.")
        if doc is None:
            missing = {k: identifier[k] for k in ("id", "key") if identifier.get(k) is not None}
            raise ApiError(
                400,
                "ReferencedResourceNotFound",
                f"The referenced object of type '{type_id}' {json.dumps(missing)} was not found. "
                "It either doesn't exist, or it can't be accessed from this endpoint.",
                typeId=type_id,
                **missing,
            )
        return doc

    def _unmanaged_reference(self, identifier: Any, type_id: str, where: str) -> Json:
        """A reference to a type the sandbox does not store (product types, custom types)."""
        if not isinstance(identifier, dict):
            raise invalid_json(f"{where}: expected a resource identifier")
        if identifier.get("id") is not None:
            return {"typeId": type_id, "id": str(identifier["id"])}
        if identifier.get("key") is not None:
            synthetic = uuid.uuid5(_SYNTHETIC, f"{type_id}:{identifier['key']}")
            return {"typeId": type_id, "id": str(synthetic)}
        raise invalid_input(f"{where}: a resource identifier needs 'id' or 'key'.")

    # -- writing: create, update, delete ------------------------------------------------------

    def _stamp(self, doc: Json) -> Json:
        now = self._now()
        return {
            "id": str(uuid.uuid4()),
            "version": 1,
            "createdAt": now,
            "lastModifiedAt": now,
            **doc,
        }

    def _insert(self, resource: str, doc: Json) -> Json:
        try:
            self.store.insert(resource, doc)
        except DuplicateDocument as error:
            raise self._duplicate(error) from None
        return doc

    @staticmethod
    def _duplicate(error: DuplicateDocument) -> ApiError:
        return ApiError(
            400,
            "DuplicateField",
            f"A duplicate value {json.dumps(error.value)} exists for field '{error.field}'.",
            field=error.field,
            duplicateValue=error.value,
        )

    def _update(
        self, request: Request, resource: str, identifier: str, faults: FaultConfig
    ) -> Response:
        body = request.json()
        actions = body.get("actions")
        if not isinstance(actions, list):
            raise invalid_json("actions: a list of update actions is required")
        if len(actions) > MAX_ACTIONS:
            raise ApiError(
                413,
                "InvalidInput",
                f"The update actions count of {len(actions)} exceeds the limit of {MAX_ACTIONS}.",
            )
        version = body.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise invalid_json("version: an integer version is required")
        handlers = self._actions[resource]
        for action in actions:
            if not isinstance(action, dict) or not isinstance(action.get("action"), str):
                raise invalid_json("actions: every update action needs an 'action' name")
            if action["action"] not in handlers:
                raise invalid_input(
                    f"Unknown update action '{action['action']}' for {resource}.",
                    action=action["action"],
                )
        doc_id = self._find(resource, identifier)["id"]
        self._maybe_conflict(request, resource, doc_id, faults)

        def apply(doc: Json) -> None:
            for action in actions:
                handlers[action["action"]](doc, action)
            if resource == "products":
                master = doc["masterData"]
                master["hasStagedChanges"] = master["current"] != master["staged"]

        try:
            doc, _ = self.store.update_checked(resource, doc_id, version, apply)
        except VersionConflict as error:
            raise self._conflict(error) from None
        except DuplicateDocument as error:
            raise self._duplicate(error) from None
        except DocumentNotFound:
            raise not_found(f"The Resource with ID '{doc_id}' was not found.") from None
        return self._document_response(200, resource, doc, request)

    @staticmethod
    def _conflict(error: VersionConflict, injected: bool = False) -> ApiError:
        extra: dict[str, Any] = {"currentVersion": error.current_version}
        if injected:
            extra["injected"] = True
        return ApiError(409, "ConcurrentModification", str(error), **extra)

    def _maybe_conflict(
        self, request: Request, resource: str, doc_id: str, faults: FaultConfig
    ) -> None:
        """Injected 409: another writer got there first (the stored version really moves)."""
        if faults.rate_409 <= 0 or not faults.applies_to(request.path):
            return
        if draw_fault(self.db_path, SIDE, faults, [("409", faults.rate_409)]) is None:
            return
        bumped = self.store.bump_version(resource, doc_id)
        if bumped is None:
            return
        expected = (
            request.json().get("version") if request.method == "POST" else request.param("version")
        )
        try:
            expected_version = int(expected)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            expected_version = bumped["version"] - 1
        raise self._conflict(VersionConflict(doc_id, expected_version, bumped["version"]), True)

    def _delete(
        self, request: Request, resource: str, identifier: str, faults: FaultConfig
    ) -> Response:
        text = request.param("version")
        if text is None:
            raise invalid_input(
                "The query parameter 'version' is required to delete.", field="version"
            )
        try:
            version = int(text)
        except ValueError:
            raise invalid_input(
                f"The parameter 'version' must be an integer, got '{text}'."
            ) from None
        doc = self._find(resource, identifier)
        self._maybe_conflict(request, resource, doc["id"], faults)
        if resource == "channels":
            in_use = self.store.conn.execute(
                "SELECT 1 FROM ct_documents WHERE resource = 'inventory' AND supply_channel = ? LIMIT 1",
                (doc["id"],),
            ).fetchone()
            if in_use is not None:
                raise ApiError(
                    400,
                    "ReferenceExists",
                    "Can not delete a channel while it is referenced by inventory entries.",
                    referencedBy="inventory-entry",
                )
        try:
            deleted = self.store.delete(resource, doc["id"], version)
        except VersionConflict as error:
            raise self._conflict(error) from None
        except DocumentNotFound:
            raise not_found(f"The Resource with ID '{identifier}' was not found.") from None
        return self._document_response(200, resource, deleted, request)

    # -- shared actions ----------------------------------------------------------------------

    def _set_key(self, doc: Json, action: Json) -> None:
        key = action.get("key")
        if key is None:
            doc.pop("key", None)
        else:
            doc["key"] = _check_key(key, "key")

    def _set_custom_type(self, doc: Json, action: Json) -> None:
        if action.get("type") is None:
            doc.pop("custom", None)
            return
        fields = _optional(action, "fields", dict, "setCustomType") or {}
        doc["custom"] = {
            "type": self._unmanaged_reference(action["type"], "type", "setCustomType -> type"),
            "fields": copy.deepcopy(fields),
        }

    def _set_custom_field(self, doc: Json, action: Json) -> None:
        name = _require(action, "name", str, "setCustomField")
        custom = doc.get("custom")
        if not isinstance(custom, dict):
            raise invalid_operation("The resource has no custom type; use setCustomType first.")
        fields = custom.setdefault("fields", {})
        if action.get("value") is None:
            fields.pop(name, None)
        else:
            fields[name] = copy.deepcopy(action["value"])
