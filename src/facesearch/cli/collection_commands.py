"""Collection commands: create/list/describe/delete collections, index images, search, list/delete faces."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facesearch.cli.output import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, UsageError, positive_int, print_json

if TYPE_CHECKING:
    from facesearch.collections.service import FaceCollectionService, RequestContext

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}  # the formats decode_image accepts


def _backend_args(p: argparse.ArgumentParser) -> None:
    from facesearch.settings import BACKENDS

    p.add_argument(
        "--backend", choices=BACKENDS, default=None, help="vector store (default: $FACESEARCH_BACKEND, else embedded)"
    )
    p.add_argument(
        "--opensearch-url", default=None, help="http://HOST:PORT[/prefix] (default: $FACESEARCH_OPENSEARCH_URL)"
    )
    p.add_argument("--data-dir", type=Path, default=None, help="embedded store + audit log (default: $FACESEARCH_HOME)")
    p.add_argument("--caller", default=None, help="who is asking (recorded in the audit log)")
    p.add_argument("--purpose", default=None, help="why (recorded in the audit log)")


def register(sub: argparse._SubParsersAction) -> None:
    coll = sub.add_parser("collection", help="manage collections")
    coll.add_argument("action", choices=["create", "list", "describe", "update", "delete", "report"])
    coll.add_argument("collection_id", nargs="?")
    coll.add_argument(
        "--floor",
        type=float,
        default=None,
        help="minimum FaceMatchThreshold (default: the service minimum, 90); update changes it (audited)",
    )
    coll.add_argument(
        "--budget",
        type=float,
        default=None,
        help="create/update: expected false candidates per stranger search at the default threshold (default 0.1)",
    )
    coll.add_argument("--json", action="store_true", help="report: print JSON")
    coll.add_argument(
        "--similarity", type=float, default=None, help="report: near-duplicates from (default: the default threshold)"
    )
    review = coll.add_mutually_exclusive_group()
    review.add_argument("--no-review", action="store_true", help="matches don't require human review")
    review.add_argument("--review", action="store_true", help="update: matches require human review again")
    _backend_args(coll)
    coll.set_defaults(func=cmd_collection)

    idx = sub.add_parser("index", help="index the faces in images (files or folders)")
    idx.add_argument("paths", nargs="+", type=Path)
    idx.add_argument("--collection", required=True)
    idx.add_argument("--external-id-from", choices=["filename", "dirname", "none"], default="filename")
    idx.add_argument("--max-faces", type=positive_int, default=None, help="at most N faces per image (≥ 1)")
    idx.add_argument("--quality-filter", default="AUTO", choices=["NONE", "AUTO", "LOW", "MEDIUM", "HIGH"])
    idx.add_argument("--create", action="store_true", help="create the collection if it doesn't exist")
    idx.add_argument("--json", action="store_true")
    _backend_args(idx)
    idx.set_defaults(func=cmd_index)

    search = sub.add_parser("search", help="search a collection by image")
    search.add_argument("image", type=Path)
    search.add_argument("--collection", required=True)
    search.add_argument("--all-faces", action="store_true", help="search every face, not just the largest")
    search.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="FaceMatchThreshold (default: the lowest within the false-candidate budget at the collection's size)",
    )
    search.add_argument("--max-faces", type=positive_int, default=10)
    search.add_argument("--annotate", type=Path, metavar="OUT.jpg")
    search.add_argument("--json", action="store_true")
    _backend_args(search)
    search.set_defaults(func=cmd_search)

    faces = sub.add_parser(
        "faces",
        help="list or delete faces in a collection; purge: erase deleted faces from the backend's files"
        " (OpenSearch keeps them in segments until then)",
    )
    faces.add_argument("action", choices=["list", "delete", "purge"])
    faces.add_argument("--collection", required=True)
    faces.add_argument("face_ids", nargs="*", help="face ids to delete")
    faces.add_argument("--external-id", default=None, help="delete every face with this ExternalImageId")
    faces.add_argument("--user-id", default=None, help="delete a user and every face associated with it")
    faces.add_argument("--json", action="store_true")
    _backend_args(faces)
    faces.set_defaults(func=cmd_faces)


def _service(args: argparse.Namespace) -> tuple[FaceCollectionService, RequestContext]:
    """The CLI's service comes from the one wiring point; flags override the environment's settings."""
    from facesearch.collections.service import RequestContext
    from facesearch.settings import load_settings
    from facesearch.wiring import build_service, default_caller

    settings = load_settings(backend=args.backend, opensearch_url=args.opensearch_url, home=args.data_dir)
    return build_service(settings), RequestContext(caller=args.caller or default_caller(), purpose=args.purpose)


def _paginate(call: Callable[..., dict[str, Any]], key: str, **params: Any) -> Iterator[Any]:
    """Every item of a NextToken-paginated service call."""
    token = None
    while True:
        page = call(**params, **({"NextToken": token} if token else {}))
        yield from page[key]
        token = page.get("NextToken")
        if not token:
            return


def _print(obj: Any) -> None:
    print_json(obj)  # never Infinity or NaN: JSON has neither


def cmd_collection(args: argparse.Namespace) -> int:
    service, ctx = _service(args)
    with service.store:
        if args.action == "list":
            for cid in _paginate(service.list_collections, "CollectionIds"):
                print(cid)
            return 0
        if not args.collection_id:
            raise UsageError(f"collection {args.action} needs a COLLECTION_ID")
        if args.action == "update":
            update: dict[str, Any] = {"CollectionId": args.collection_id}
            if args.floor is not None:
                update["FaceMatchThresholdFloor"] = args.floor
            if args.no_review or args.review:
                update["ReviewRequired"] = bool(args.review)
            if args.budget is not None:
                update["FalseCandidateBudget"] = args.budget
            if len(update) == 1:
                raise UsageError("collection update needs --floor N, --budget N, --review or --no-review")
            _print(service.update_collection(context=ctx, **update))
        elif args.action == "create":
            params: dict[str, Any] = {"CollectionId": args.collection_id, "ReviewRequired": not args.no_review}
            if args.floor is not None:
                params["FaceMatchThresholdFloor"] = args.floor
            if args.budget is not None:
                params["FalseCandidateBudget"] = args.budget
            _print(service.create_collection(context=ctx, **params))
        elif args.action == "describe":
            _print(service.describe_collection(CollectionId=args.collection_id))
        elif args.action == "report":
            from facesearch.collections.report import collection_report

            reader = getattr(service.audit, "read", None)
            report = collection_report(
                service, args.collection_id, reader() if reader else [], similarity=args.similarity
            )
            if args.json:
                _print(report)
            else:
                print(summarize_report(report))
        else:
            _print(service.delete_collection(context=ctx, CollectionId=args.collection_id))
    return 0


def summarize_report(r: dict[str, Any]) -> str:
    lines = [
        f"collection        {r['CollectionId']}: {r['FaceCount']:,} faces, {r['UserCount']:,} users",
        f"floor / default   {r['FaceMatchThresholdFloor']} / {r['DefaultFaceMatchThreshold']} "
        f"(default: lowest similarity within {r['FalseCandidateBudget']} false candidates per stranger search)",
        "threshold  FMR/comparison  expected false candidates/search  P(any false candidate)",
    ]
    for risk in r["FalseMatchRisk"]:
        lines.append(
            f"{risk['Threshold']:>9}  {risk['FalseMatchRatePerComparison']:>14.3g}  "
            f"{risk['ExpectedFalseCandidatesPerSearch']:>32.3g}  {risk['ProbabilityOfAnyFalseCandidate']:>22.3g}"
        )
    dups = r["NearDuplicatesUnderDifferentNames"]
    if dups is None:
        lines.append(f"near-duplicates   not checked: {r['NearDuplicatesSkipped']}")
    else:
        lines.append(
            f"near-duplicates   {len(dups)} pair(s) of faces under different names at similarity "
            f"≥ {r['NearDuplicateSimilarity']} (the same person under two names, or look-alikes):"
        )
        for d in dups[:20]:
            a, b = (f.get("UserId") or f.get("ExternalImageId") for f in d["Faces"])
            ids = " ".join(f["FaceId"] for f in d["Faces"])
            lines.append(f"                  {d['Similarity']:.2f}  {a} ↔ {b}  ({ids})")
    st = r["SearchStatistics"]
    thr = st["Thresholds"]
    lines.append(
        f"searches (audit)  {st['Searches']} by {st['Callers']} caller(s) {st['ByOperation'] or ''}; "
        f"{st['SearchesWithAnyMatch']} with a match, {st['MatchesPerSearch']} matches per search; "
        f"{st['WithoutPurpose']} without a purpose"
        + (f"; thresholds {thr['Min']}–{thr['Max']} (median {thr['Median']})" if thr else "")
    )
    return "\n".join(lines)


def iter_images(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            from facesearch.errors import InvalidParameterException

            raise InvalidParameterException(f"no such file or folder: {path}")
    return found


def external_id(path: Path, mode: str) -> str | None:
    """The ExternalImageId for a file: its stem (or folder name) when that is already a valid id; otherwise
    the cleaned name plus a short hash of the original, so two names that clean to the same text ("a b" and
    "a_b", or two long names with one prefix) never merge under one id."""
    import hashlib
    import re

    if mode == "none":
        return None
    raw = path.stem if mode == "filename" else path.parent.name
    cleaned = re.sub(r"[^a-zA-Z0-9_.\-:]", "_", raw)
    if cleaned == raw and 0 < len(raw) <= 255:
        return raw
    if not raw:
        return None
    digest = hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{cleaned[:244]}-{digest}"


def cmd_index(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from facesearch.collections.images import read_image_file
    from facesearch.errors import FaceSearchError, ResourceNotFoundException

    images = iter_images(args.paths)
    service, ctx = _service(args)
    indexed, skipped, failed, no_face = 0, [], [], []
    results = []
    with service.store:
        try:
            service.store.get_collection(args.collection)
        except ResourceNotFoundException:
            if not args.create:
                raise
            service.create_collection(context=ctx, CollectionId=args.collection)
        for path in tqdm(images, desc=f"indexing into {args.collection}", unit="img", file=sys.stderr):
            try:
                params: dict[str, Any] = {
                    "CollectionId": args.collection,
                    "Image": {"Bytes": read_image_file(path)},
                    "QualityFilter": args.quality_filter,
                }
                if (ext := external_id(path, args.external_id_from)) is not None:
                    params["ExternalImageId"] = ext
                if args.max_faces is not None:
                    params["MaxFaces"] = args.max_faces
                out = service.index_faces(context=ctx, **params)
            except FaceSearchError as exc:
                if exc.http_status >= 500:
                    raise  # the service itself failed (audit, store): stop, don't skip every image
                failed.append((str(path), f"{exc.code}: {exc.message}"))
                continue
            indexed += len(out["FaceRecords"])
            if not out["FaceRecords"] and not out["UnindexedFaces"]:
                no_face.append(str(path))
            for u in out["UnindexedFaces"]:
                skipped.append((str(path), "face not indexed: " + ",".join(u["Reasons"])))
            results.append({"image": str(path), "FaceIds": [r["Face"]["FaceId"] for r in out["FaceRecords"]]})
    summary = {
        "images": len(images),
        "faces_indexed": indexed,
        "no_face": no_face,
        "failed": failed,
        "skipped": failed + skipped,
    }
    if args.json:
        _print({**summary, "results": results})
    else:
        print(f"indexed {indexed} face(s) from {len(images)} image(s) into {args.collection}")
        if no_face:
            print(f"no face found in {len(no_face)}: " + ", ".join(no_face))
        for path, why in failed + skipped:
            print(f"skipped {path}: {why}")
    if failed:
        print(f"{len(failed)} of {len(images)} image(s) failed", file=sys.stderr)
        return EXIT_ERROR if len(failed) == len(images) else EXIT_PARTIAL
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from facesearch.collections.images import read_image_file

    image = read_image_file(args.image)  # before the store is opened: a bad path leaves nothing open
    service, ctx = _service(args)
    params: dict[str, Any] = {
        "CollectionId": args.collection,
        "Image": {"Bytes": image},
        "MaxFaces": args.max_faces,
        "AllFaces": args.all_faces,
    }
    if args.threshold is not None:
        params["FaceMatchThreshold"] = args.threshold
    with service.store:
        out = service.search_faces_by_image(context=ctx, **params)
    searched = out.get("SearchedFaces") or [
        {
            "BoundingBox": out["SearchedFaceBoundingBox"],
            "Confidence": out["SearchedFaceConfidence"],
            "FaceMatches": out["FaceMatches"],
        }
    ]
    if args.json:
        _print(out)
    else:
        for i, face in enumerate(searched, 1):
            box = face["BoundingBox"]
            where = f"at left {box['Left']:.2f}, top {box['Top']:.2f}"
            if not face["FaceMatches"]:
                print(f"face {i} ({where}): no match")
            for m in face["FaceMatches"][:3]:
                who = m["Face"].get("ExternalImageId") or m["Face"]["FaceId"]
                flag = " [review required]" if m.get("ReviewRequired") else ""
                print(f"face {i} ({where}): {who} similarity {m['Similarity']:.2f}{flag}")
    if args.annotate:
        annotate_search(args.image, searched, args.annotate)
    return 0


def annotate_search(image_path: Path, searched: list[dict[str, Any]], out: Path) -> Path:
    from facesearch.annotate import GREEN, RED, draw_faces, save_rgb
    from facesearch.collections.images import read_image_file
    from facesearch.engine.decode import decode_image

    image = decode_image(read_image_file(image_path))
    w, h = image.width, image.height
    boxes, labels, colors = [], [], []
    for face in searched:
        b = face["BoundingBox"]
        boxes.append((b["Left"] * w, b["Top"] * h, (b["Left"] + b["Width"]) * w, (b["Top"] + b["Height"]) * h))
        best = face["FaceMatches"][0] if face["FaceMatches"] else None
        if best:
            who = best["Face"].get("ExternalImageId") or best["Face"]["FaceId"][:8]
            labels.append(f"{who} {best['Similarity']:.1f}")
            colors.append(GREEN)
        else:
            labels.append("unknown")
            colors.append(RED)
    return save_rgb(draw_faces(image.rgb, boxes, None, labels, colors), out)


def cmd_faces(args: argparse.Namespace) -> int:
    service, ctx = _service(args)
    with service.store:
        if args.action == "list":
            faces = list(_paginate(service.list_faces, "Faces", CollectionId=args.collection))
            if args.json:
                _print(faces)
            else:
                for f in faces:
                    print(f"{f['FaceId']}  {f.get('ExternalImageId', '-'):30s}  {f.get('UserId', '')}")
                print(f"{len(faces)} face(s)")
            return 0
        if args.action == "purge":
            _print(service.purge_deleted_faces(context=ctx, CollectionId=args.collection))
            return 0
        if args.external_id or args.user_id:
            if args.face_ids:
                raise UsageError("give FACE_ID... or --external-id/--user-id, not both")
            key = {"ExternalImageId": args.external_id} if args.external_id else {"UserId": args.user_id}
            _print(service.erase_faces(context=ctx, CollectionId=args.collection, **key))
            return 0
        ids = list(args.face_ids)
        if not ids:
            raise UsageError("faces delete needs FACE_ID..., --external-id or --user-id")
        deleted, failed = [], []
        for start in range(0, len(ids), 4096):
            out = service.delete_faces(context=ctx, CollectionId=args.collection, FaceIds=ids[start : start + 4096])
            deleted += out["DeletedFaces"]
            failed += out["UnsuccessfulFaceDeletions"]
        _print({"DeletedFaces": deleted, "UnsuccessfulFaceDeletions": failed})
    return 0
