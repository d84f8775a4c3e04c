"""KMock's Kubernetes emulator plus the smallest faithful pieces the operator's tests need.

Run in its OWN process (``[sys.executable, "-P", this file, "--resources", FILE]``): sharing the
operator's event loop starves both (field notes). Prints ``PORT <n>`` once it listens.

What is added to KMock 0.8, each written to the Kubernetes documentation (listed in README.md):
object metadata (uid, resourceVersion, generation, creationTimestamp), the status subresource
split, owner-reference garbage collection, label selectors on list/watch, server-side apply's
removal of fields its manager no longer applies, no-op writes that change nothing, and a bounded
request log. Everything else (discovery, watch streaming, routing) is KMock's own.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import itertools
import json
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import kmock
from kmock import KubernetesError, KubernetesObjectNotFoundError

APPLY = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"
Path = tuple[str, ...]


def merge(target: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7386): dicts merge, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def json_patch(target: Any, ops: list[Mapping[str, Any]]) -> Any:
    """RFC 6902, the operations kopf uses (add, replace, remove, test)."""
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1] if parts else None
        if op["op"] == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op.get("value"):
                raise KubernetesError(status=422, reason="Invalid", message=f"test failed at {op['path']}")
        elif op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if op["op"] == "add":
                    parent.insert(index, op["value"])
                else:
                    parent[index] = op["value"]
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                parent.pop(last, None)
    return doc


def leaf_paths(obj: Any, prefix: Path = ()) -> set[Path]:
    """Field paths of a manifest: lists are atomic (one owner for the whole list)."""
    if isinstance(obj, Mapping) and obj:
        out: set[Path] = set()
        for key, value in obj.items():
            out |= leaf_paths(value, (*prefix, key))
        return out
    return {prefix} if prefix else set()


def remove_path(obj: dict[str, Any], path: Path) -> None:
    node: Any = obj
    for part in path[:-1]:
        if not isinstance(node, dict) or part not in node:
            return
        node = node[part]
    if isinstance(node, dict):
        node.pop(path[-1], None)


def overlaps(a: Path, b: Path) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def matches_selector(labels: Mapping[str, str], selector: str) -> bool:
    """Equality-based label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class FaithfulEmulator(kmock.KubernetesEmulator):
    """KMock's emulator with the semantics listed in the module docstring."""

    def setup(self, *, resources: list[dict[str, Any]], keep_requests: int) -> None:
        self.keep_requests = keep_requests
        self.rv = itertools.count(1)
        self.owners: dict[Any, dict[str, set[Path]]] = {}
        self.status_split: set[Any] = set()
        self.purge: list[Any] = []
        self._collectors: set[asyncio.Task[None]] = set()  # pending deletions of dangling dependents
        self.served = 0
        self.watches_opened = 0
        self.watches_ended = 0
        self.mark = time.monotonic()
        for r in resources:
            res = kmock.resource(group=r["group"], version=r["version"], plural=r["plural"])
            self.resources[res] = kmock.ResourceInfo(
                kind=r["kind"], namespaced=r["namespaced"], verbs=set(r["verbs"]),
                subresources=set(r.get("subresources", [])), shortnames=set(r.get("shortNames", [])),
                singular=r["kind"].lower(),
            )
            if "status" in r.get("subresources", []):
                self.status_split.add(res)

    # --- writes ---------------------------------------------------------------------------

    async def _handle(self, request: kmock.Request) -> Any:  # type: ignore[override]
        try:
            if request.resource is not None and request.action in (
                kmock.action.CREATE, kmock.action.UPDATE, kmock.action.DELETE
            ) and (request.action == kmock.action.CREATE or request.name is not None):
                async with self._lock:
                    await self._write(request)
            return await kmock.KubernetesScaffold._handle(self, request)
        finally:
            # Forget deleted objects once the response is built (KMock keeps soft-deleted ones
            # forever and scans them all on every request).
            async with self._lock:
                for key in self.purge:
                    if key in self._objects and self._objects[key].deleted:
                        del self._objects[key]
                self.purge.clear()
            self._trim()

    def _trim(self) -> None:
        """KMock matches each request against its whole log; keep it bounded."""
        self.served += 1
        if self.served % 500 == 0:
            now = time.monotonic()
            rate = 500 / max(now - self.mark, 1e-9)
            self.mark = now
            print(f"served={self.served} rate={rate:.0f}/s objects={len(list(self._objects))}",
                  file=sys.stderr, flush=True)
        keep = self.keep_requests
        if len(self._requests) > keep * 2:
            del self._requests[:-keep]
            for payload in self._payloads:
                if len(payload._requests) > keep:
                    del payload._requests[:-keep]
            for errors in self._errors:
                del errors[:-keep]

    async def _emit(self, resource: Any, kind: str, obj: Mapping[str, Any]) -> None:
        await self._buses[resource].put({"type": kind, "object": copy.deepcopy(dict(obj))})

    def _manager(self, request: kmock.Request) -> str:
        return request.params.get("fieldManager") or "unknown"

    def _own(self, key: Any, manager: str, paths: set[Path], *, replace: bool) -> set[Path]:
        owners = self.owners.setdefault(key, {})
        previous = owners.get(manager, set())
        for other in owners:
            if other != manager:
                owners[other] = owners[other] - paths
        owners[manager] = set(paths) if replace else previous | paths
        return previous

    async def _write(self, request: kmock.Request) -> None:
        res = request.resource
        data = request.data
        if request.action == kmock.action.CREATE:
            given = (data or {}).setdefault("metadata", {})
            if not given.get("name") and given.get("generateName"):
                # Named in the request itself: KMock's create response looks the object up by it.
                given["name"] = given["generateName"] + uuid.uuid4().hex[:5]
            await self._create(request, data or {}, request.namespace or given.get("namespace"))
            return

        key = (res, request.namespace, request.name)
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
        missing = key not in self._objects or self._objects[key].deleted
        if missing and request.action == kmock.action.UPDATE and content_type == APPLY and not request.subresource:
            await self._create(request, data or {}, request.namespace)  # server-side apply creates
            return
        if missing:
            raise KubernetesObjectNotFoundError()
        old = copy.deepcopy(self._objects[key].raw)

        if request.action == kmock.action.DELETE:
            if old["metadata"].get("deletionTimestamp"):
                return
            if old["metadata"].get("finalizers"):
                new = merge(old, {"metadata": {"deletionTimestamp": datetime.now(UTC).isoformat()}})
                new["metadata"]["resourceVersion"] = str(next(self.rv))
                self._objects[key] = new
                await self._emit(res, "MODIFIED", new)
            else:
                await self._delete(key)
            return

        subresource = request.subresource
        if subresource not in (None, "status"):
            raise KubernetesObjectNotFoundError()
        if content_type == JSON_PATCH:
            patched = json_patch(old, data or [])
            if subresource == "status":
                new = {**old, "status": patched.get("status")}
            elif res in self.status_split:
                new = {**patched, "status": old.get("status")}
            else:
                new = patched
        else:
            patch = dict(data or {})
            if subresource == "status":
                patch = {"status": patch.get("status")} if "status" in patch else {}
            elif res in self.status_split:
                patch.pop("status", None)
            base = old
            if content_type == APPLY:
                # Server-side apply: fields this manager applied before and no longer applies are
                # removed, unless another manager also owns them.
                paths = leaf_paths({k: v for k, v in patch.items() if k not in ("apiVersion", "kind")})
                previous = self._own(key, self._manager(request), paths, replace=True)
                others = set().union(*(o for m, o in self.owners[key].items() if m != self._manager(request)))
                base = copy.deepcopy(old)
                for path in previous - paths:
                    if not any(overlaps(path, other) for other in others):
                        remove_path(base, path)
            else:
                self._own(key, self._manager(request), leaf_paths(patch), replace=False)
            new = merge(base, patch)
        if "status" in new and new["status"] is None:
            new.pop("status")
        for field in ("uid", "creationTimestamp", "generation", "resourceVersion", "namespace", "name"):
            if field in old["metadata"]:
                new.setdefault("metadata", {})[field] = old["metadata"][field]
        if new == old:
            return  # a no-op write changes nothing, not even the resourceVersion
        outside = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status")}  # noqa: E731
        if outside(new) != outside(old):
            new["metadata"]["generation"] = int(old["metadata"].get("generation") or 1) + 1
        new["metadata"]["resourceVersion"] = str(next(self.rv))
        self._objects[key] = new
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            await self._delete(key)
        else:
            await self._emit(res, "MODIFIED", new)

    async def _create(self, request: kmock.Request, data: dict[str, Any], namespace: str | None) -> None:
        res = request.resource
        obj = copy.deepcopy(data)
        meta = obj.setdefault("metadata", {})
        if namespace:
            meta["namespace"] = namespace
        key = (res, namespace, meta["name"])
        if key in self._objects and not self._objects[key].deleted:
            raise KubernetesError(status=409, reason="AlreadyExists",
                                  message=f"{res.plural} {meta['name']!r} already exists")
        if res in self.status_split:
            obj.pop("status", None)
        meta.update(uid=str(uuid.uuid4()), resourceVersion=str(next(self.rv)), generation=1,
                    creationTimestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.owners.pop(key, None)
        self._own(key, self._manager(request),
                  leaf_paths({k: v for k, v in obj.items() if k not in ("status", "apiVersion", "kind")}),
                  replace=True)
        self._objects[key] = obj
        await self._emit(res, "ADDED", obj)
        if self._dangling(obj):
            # The garbage collector deletes a dependent whose owners are all gone, also one created
            # after its owner was deleted (an apply that raced the owner's deletion): shortly after
            # the create has been answered, as the real collector does.
            self._collectors.add(task := asyncio.create_task(self._collect(key)))
            task.add_done_callback(self._collectors.discard)

    async def _collect(self, key: Any) -> None:
        await asyncio.sleep(0.05)
        current = self._objects[key] if key in self._objects else None  # noqa: SIM401 (no .get here)
        if current is not None and not current.deleted and self._dangling(current.raw):
            await self._delete(key)

    def _dangling(self, obj: Mapping[str, Any]) -> bool:
        refs = obj.get("metadata", {}).get("ownerReferences") or []
        if not refs:
            return False
        live = {o.raw["metadata"].get("uid") for o in self._objects.values() if not o.deleted}
        return not any(ref.get("uid") in live for ref in refs)

    async def _delete(self, key: Any) -> None:
        """Delete, then garbage-collect dependents whose ownerReferences name the deleted uid
        (background cascading deletion, done at once)."""
        obj = self._objects[key].raw
        uid = obj["metadata"]["uid"]
        self._objects[key].delete()
        self.owners.pop(key, None)
        self.purge.append(key)
        await self._emit(key[0], "DELETED", obj)
        for other_key, other in list(self._objects.items()):
            if other.deleted:
                continue
            refs = other.raw.get("metadata", {}).get("ownerReferences") or []
            if any(ref.get("uid") == uid for ref in refs):
                await self._delete(other_key)

    # --- reads: label selectors ------------------------------------------------------------

    async def _serve_list(self, request: kmock.Request) -> Any:  # type: ignore[override]
        result = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        if selector:
            result["items"] = [i for i in result["items"]
                               if matches_selector(i.get("metadata", {}).get("labels") or {}, selector)]
        result["metadata"] = {"resourceVersion": str(next(self.rv))}
        return result

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:  # type: ignore[override]
        """Label selectors, and ``timeoutSeconds``: the API server ends the watch after it (KMock
        streams forever), so a client must re-establish its watches."""
        selector = request.params.get("labelSelector")
        timeout = float(request.params["timeoutSeconds"]) if "timeoutSeconds" in request.params else None
        deadline = None if timeout is None else time.monotonic() + timeout
        stream = super()._serve_watch(request).__aiter__()
        self.watches_opened += 1
        try:
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self.watches_ended += 1
                    print(f"watch ended after timeoutSeconds={timeout}: {request.url.path}",
                          file=sys.stderr, flush=True)
                    return
                try:
                    event = await asyncio.wait_for(stream.__anext__(), remaining)
                except TimeoutError:
                    continue
                except StopAsyncIteration:
                    return
                if selector and isinstance(event, dict):
                    labels = event.get("object", {}).get("metadata", {}).get("labels") or {}
                    if not matches_selector(labels, selector):
                        continue
                yield event
        finally:
            await stream.aclose()


async def serve(resources: list[dict[str, Any]], port: int, keep_requests: int) -> None:
    emulator = FaithfulEmulator()
    emulator.setup(resources=resources, keep_requests=keep_requests)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with emulator, kmock.Server(emulator, port=port or None) as server:
        print(f"PORT {server.port}", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--keep-requests", type=int, default=200)
    args = parser.parse_args()
    with open(args.resources, encoding="utf-8") as f:
        resources = json.load(f)
    asyncio.run(serve(resources, args.port, args.keep_requests))


if __name__ == "__main__":
    main()
