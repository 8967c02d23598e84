"""The parts of ``scripts/demo`` that are awkward in shell: an S3 server, seeding it, faults, printing results.

Usage::

    python scripts/demo_support.py s3-server              # moto S3 on a free 127.0.0.1 port, until SIGTERM
    python scripts/demo_support.py seed ENDPOINT DOCS_DIR   # bucket + sample documents
    python scripts/demo_support.py faults ANYFAST_URL       # two tickets get invalid JSON (local server only)
    python scripts/demo_support.py show OUTPUT_DIR ENDPOINT # where the outputs are, and a few rows
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

BUCKET = "anyfast-examples"
DOCS_PREFIX = "documents/"
SUMMARIES_PREFIX = "document-summaries/"
# Tickets whose answers the local server breaks, so the run shows its review sink.
BROKEN_TICKETS = ("TCK-1006", "TCK-1027")


def s3_server() -> int:
    """Serve S3 (moto) until SIGTERM/SIGINT, after printing one ``listening on`` line."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    print(f"moto S3 server listening on http://{host}:{port}", flush=True)
    done.wait()
    server.stop()
    return 0


def _s3(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def seed(endpoint: str, docs_dir: str) -> int:
    """Create the demo bucket and upload the sample documents under ``documents/``."""
    s3 = _s3(endpoint)
    s3.create_bucket(Bucket=BUCKET)
    docs = sorted(p for p in Path(docs_dir).iterdir() if p.is_file())  # PDFs and a scanned page (PNG)
    for doc in docs:
        s3.upload_file(str(doc), BUCKET, DOCS_PREFIX + doc.name)
    kinds = ", ".join(f"{sum(d.suffix == s for d in docs)} {s[1:].upper()}" for s in sorted({d.suffix for d in docs}))
    print(f"    uploaded {len(docs)} documents ({kinds}) to s3://{BUCKET}/{DOCS_PREFIX}")
    return 0


def faults(base_url: str) -> int:
    """Make the local AnyFast server answer two tickets with invalid JSON, every time."""
    rules = [{"contains": f"Ticket {t} ", "fault": {"kind": "invalid_json"}} for t in BROKEN_TICKETS]
    request = urllib.request.Request(
        f"{base_url}/_control/faults", data=json.dumps({"rules": rules}).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    print(f"    the local server will answer invalid JSON for {', '.join(BROKEN_TICKETS)} (to show the review sink)")
    return 0


def _rows(text: str, count: int | None = None) -> list[dict[str, Any]]:
    """The JSON Lines in ``text``, ordered by id (rows are written in completion order)."""
    rows = sorted((json.loads(line) for line in text.splitlines() if line.strip()), key=lambda r: str(r.get("id")))
    return rows[:count]


def _latest(pattern: str, root: Path) -> Path | None:
    found = sorted(root.glob(pattern), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _cut(text: Any, width: int) -> str:
    text = str(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def _show_products(root: Path) -> None:
    manifest_path = _latest("product_enrichment/*/manifest.json", root)
    if manifest_path is None:
        return
    manifest = json.loads(manifest_path.read_text())
    print(f"\n== anyfast_product_enrichment -> {manifest_path.parent}")
    print(f"   rows: {manifest['counts']}  tokens: {manifest['usage']['total_tokens']}")
    for row in _rows((manifest_path.parent / manifest["files"][0]).read_text(), 3):
        out = row["output"] or {}
        attrs = ", ".join(f"{a['name']}={a['value']}" for a in out.get("attributes", [])[:2])
        print(
            f"   {row['id']}  [{out.get('category')}]  {_cut(attrs, 45)} | {_cut(out.get('marketing_description'), 50)}"
        )


def _show_documents(root: Path, endpoint: str) -> None:
    s3 = _s3(endpoint)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=SUMMARIES_PREFIX).get("Contents", [])]
    manifests = sorted(k for k in keys if k.endswith("/manifest.json"))
    if not manifests:
        return
    folder = manifests[-1].rsplit("/", 1)[0]
    copy = root / "s3" / BUCKET
    for key in keys:  # moto keeps objects in memory only: keep a copy for after the demo
        (copy / key).parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(BUCKET, key, str(copy / key))
    manifest = json.loads((copy / manifests[-1]).read_text())
    print(f"\n== anyfast_document_summarization -> s3://{BUCKET}/{folder}/ (copied to {copy / folder})")
    print(f"   rows: {manifest['counts']}  tokens: {manifest['usage']['total_tokens']}")
    rows = [row for part in manifest["files"] for row in _rows((copy / folder / part).read_text())]
    scans = [r for r in rows if str(r["id"]).endswith(".png")]
    shown = scans[:1] + [r for r in rows if str(r["id"]).endswith(".pdf")][:2]
    for row in shown:  # the server's placeholder answers name the type and byte count of the file it received
        out = row["output"] or {}
        print(f"   {_cut(row['id'], 34):34}  [{out.get('language')}]  {_cut(out.get('title'), 70)}")


def _show_tickets(root: Path) -> None:
    routed = _latest("ticket_classification/*/routed", root)
    if routed is None:
        return
    print(f"\n== anyfast_ticket_classification -> {routed}")
    for sink in ("urgent", "agents", "self_service", "review"):
        items = [{**t, "id": t["ticket_id"]} for t in _rows((routed / f"{sink}.jsonl").read_text())]
        example = ""
        if items:
            first = items[0]
            label = (first.get("classification") or {}).get("priority", "invalid answer")
            example = f"e.g. {first['ticket_id']} ({label}): {_cut(first['subject'], 40)}"
        print(f"   {sink + '.jsonl':18} {len(items):3} tickets  {example}")


def show(output_dir: str, endpoint: str) -> int:
    """Print where each example DAG wrote, its counts and a few rows."""
    root = Path(output_dir)
    _show_products(root)
    _show_documents(root, endpoint)
    _show_tickets(root)
    return 0


def main(argv: list[str]) -> int:
    commands = {"s3-server": s3_server, "seed": seed, "faults": faults, "show": show}
    if not argv or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    return commands[argv[0]](*argv[1:])  # type: ignore[operator]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
