"""One DuckDB load batch, inside the caller's transaction: bundles in one set-based pass,
NDJSON files block by block, then the file rows, the errors and the supersede step.

Split from `duckdb.py` (the Warehouse class) so each stays one concern.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fhirflow import gz
from fhirflow.digest import file_sha256
from fhirflow.warehouse import (
    ENTRY_SAMPLE,
    BatchFile,
    BatchResult,
    EntryRejected,
    Rejected,
    files,
    reasons,
)
from fhirflow.warehouse import duckdb_sql as sql

CORRUPT_GZIP = reasons.CORRUPT_GZIP


@dataclass(frozen=True)
class Prepared:
    """A batch's files made ready outside its transaction: the bundles (local plain path and
    content hash) parsed into the scratch table `parsed`, the NDJSON files left to stream
    inside the transaction, and the gzip bundles that would not inflate."""

    bundles: list[tuple[BatchFile, Path, str]]
    ndjson: list[tuple[BatchFile, Path]]
    failed: list[tuple[BatchFile, str]]  # (file, reason)
    parsed: str | None


def scratch_name(load_id: str) -> str:
    """The in-memory database a batch is parsed into, its own, detached when it ends."""
    return "fhirflow_scratch_" + re.sub(r"[^0-9A-Za-z]", "_", load_id)


def prepare(con: Any, batch_files: list[BatchFile], tmp: Path, scratch: str) -> Prepared:
    """Sniff, inflate and hash each file (a thread per core: reading, gzip and OpenSSL's
    SHA-256 release the GIL), then parse the bundles into the table `parsed` of the
    in-memory database `scratch`, one connection per core. Nothing of RAW is touched: this
    runs before the batch's transaction, whose connection then reads the committed scratch
    rows (a transaction sees what was committed before it began)."""
    threads = _threads(con)

    def sniff(item: tuple[int, BatchFile]) -> tuple[BatchFile, Path, str, str]:
        """(file, plain path, kind, detail): kind "bundle" with the content hash,
        "ndjson", or "failed" with the file's reason."""
        i, f = item
        path = _local_path(f)
        try:
            sniffed = files.kind_of(path, f.key)
            if sniffed.kind == "ndjson":
                return f, path, "ndjson", ""
            if sniffed.compressed:
                plain = tmp / f"{i:06d}.json"
                if not _gunzip(path, plain):
                    return f, path, "failed", CORRUPT_GZIP
                path = plain
            return f, path, "bundle", file_sha256(path)
        except FileNotFoundError:
            # Removed since it was listed: that file's error, not the batch's crash.
            return f, path, "failed", reasons.GONE

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(batch_files)))) as pool:
        sniffed = list(pool.map(sniff, enumerate(batch_files)))
    bundles = [(f, p, d) for f, p, kind, d in sniffed if kind == "bundle"]
    ndjson = [(f, p) for f, p, kind, _d in sniffed if kind == "ndjson"]
    failed = [(f, d) for f, _p, kind, d in sniffed if kind == "failed"]
    if not bundles:
        return Prepared(bundles, ndjson, failed, None)
    con.execute(f"attach ':memory:' as {scratch}")
    table = f"{scratch}.parsed"
    con.execute(sql.PARSED_TABLE.replace("{table}", table))
    parse(con, table, [str(p) for _f, p, _h in bundles], threads)
    return Prepared(bundles, ndjson, failed, table)


def parse(con: Any, table: str, paths: list[str], threads: int) -> None:
    """PARSE_BUNDLES over the paths in `threads` shares of about equal bytes, side by side
    on connections of their own (DuckDB's read_blob reads on one thread per query); each
    share commits on its own into the scratch table, appends that do not conflict."""
    shares: list[list[str]] = [[] for _ in range(max(1, min(threads, len(paths))))]
    loads = [0] * len(shares)
    sizes = {p: Path(p).stat().st_size for p in paths}
    for path in sorted(paths, key=lambda p: -sizes[p]):
        lightest = loads.index(min(loads))
        shares[lightest].append(path)
        loads[lightest] += sizes[path]
    statement = sql.PARSE_BUNDLES.replace("{table}", table)

    def run(share: list[str]) -> None:
        cur = con.cursor()
        try:
            cur.execute(statement, {"paths": share})
        finally:
            cur.close()

    if len(shares) == 1:
        run(shares[0])
        return
    with ThreadPoolExecutor(max_workers=len(shares)) as pool:
        list(pool.map(run, shares))


def detach_scratch(con: Any, scratch: str) -> None:
    con.execute(f"detach database if exists {scratch}")


def _threads(con: Any) -> int:
    (n,) = con.execute("select current_setting('threads')").fetchone()
    return max(1, int(n))


@dataclass
class _Batch:
    con: Any
    load_id: str
    now: datetime
    loaded: list[int] = field(default_factory=list)
    errors: list[Rejected] = field(default_factory=list)

    def _params(self, **more: Any) -> dict[str, Any]:
        return {"load_id": self.load_id, "now": self.now, **more}

    def reject(self, rejected: list[Rejected]) -> None:
        self.con.execute(sql.BATCH_TABLES)
        if rejected:
            self.con.executemany(
                "insert into _rejected values (?, ?, ?, ?)",
                [(r.key, files.source_name(r.key), r.size, r.reason) for r in rejected],
            )

    def load(self, prepared: Prepared, known: set[str]) -> None:
        """The prepared files less the `known` keys (RAW holds them already)."""
        for f, reason in prepared.failed:
            if f.key not in known:
                self._file_error(f, reason)
        bundles = [(f, p, h) for f, p, h in prepared.bundles if f.key not in known]
        if bundles and prepared.parsed is not None:
            self._load_bundles(bundles, prepared.parsed)
        for f, path in prepared.ndjson:
            if f.key not in known:
                self._load_ndjson(f, path)

    def _load_bundles(self, bundles: list[tuple[BatchFile, Path, str]], parsed: str) -> None:
        con = self.con
        con.executemany("insert into _keys values (?, ?, ?, ?)",
                        [(str(p), f.key, files.source_name(f.key), h) for f, p, h in bundles])
        con.execute(sql.CLASSIFY_BUNDLES.replace("{table}", parsed))
        con.execute(sql.SKIP_RESENT_BUNDLES)
        con.execute(sql.BUNDLE_CANDIDATES.replace("{table}", parsed))
        self._insert_candidates("_bundle_candidates")
        con.execute("drop view _bundle_candidates")
        self.loaded += [r[0] for r in con.execute(sql.INSERT_BUNDLE_FILES,
                                                  self._params()).fetchall()]

    def _insert_candidates(self, source: str = "_candidates", *, sort: bool = True) -> None:
        order = "\norder by resource_type, key, entry_index" if sort else ""
        for statement in (sql.INSERT_RESOURCES, sql.INSERT_ENTRY_ERRORS, sql.COUNT_CANDIDATES):
            self.con.execute(statement.replace("{source}", source).replace("{order}", order),
                             self._params() if "$load_id" in statement else None)

    def _load_ndjson(self, f: BatchFile, path: Path) -> None:
        con = self.con
        name = files.source_name(f.key)
        digest = hashlib.sha256()
        content_bytes = 0  # inflated: the file's size as RAW records a bundle's
        try:
            for block in files.blocks(path):
                digest.update(block.raw)
                content_bytes += len(block.raw)
                params = {"key": f.key, "name": name}
                if block.text is not None:
                    con.execute(sql.NDJSON_BLOCK,
                                {**params, "text": block.text, "first": block.first_line})
                else:
                    con.execute("create or replace temp table _rows "
                                "(line_number bigint, line varchar)")
                    con.executemany("insert into _rows values (?, ?)",
                                    list(files.split_lines(block)))
                    con.execute(sql.NDJSON_ROWS, params)
                # A block of one resource type (a Bulk Data file holds one) is in the order
                # the sort would give already (one key, lines in order): not sorted again.
                (types,) = con.execute(sql.CANDIDATE_TYPES).fetchone()
                self._insert_candidates(sort=types > 1)
        except (OSError, *gz.CORRUPT_ERRORS) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile):
                raise
            # What went in before the damage goes out again: the file is one error.
            self._take_back(f.key)
            self._file_error(f, CORRUPT_GZIP)
            return
        latest = con.execute(sql.LATEST_HASH, [name]).fetchone()
        if latest and latest[0] == digest.hexdigest():
            self._take_back(f.key)  # re-sent content RAW holds already (SKIP_RESENT_BUNDLES)
            return
        row = con.execute(sql.INSERT_NDJSON_FILE, self._params(
            key=f.key, name=name, size=content_bytes, hash=digest.hexdigest())).fetchone()
        self.loaded.append(row[0])

    def _take_back(self, key: str) -> None:
        """Remove what this batch inserted for one NDJSON file."""
        for table in ("fhir_resources", "entry_errors"):
            self.con.execute(f"delete from raw.{table} where object_key = ? and load_id = ?",
                             [key, self.load_id])
        self.con.execute("delete from _counts where key = ?", [key])

    def _file_error(self, f: BatchFile, reason: str) -> None:
        self.con.execute("insert into _rejected values (?, ?, ?, ?)",
                         [f.key, files.source_name(f.key), f.size, reason])

    def finish(self, result: BatchResult) -> None:
        con = self.con
        errors = con.execute(sql.INSERT_FILE_ERRORS, self._params()).fetchall()
        for statement in sql.SUPERSEDE:
            con.execute(statement, {"load_id": self.load_id})
        entries, rejected = con.execute(
            "select coalesce(sum(entries), 0), coalesce(sum(rejected), 0) from _counts"
        ).fetchone()
        result.errors = sorted((Rejected(*e) for e in errors), key=lambda r: r.key)
        result.files_loaded = len(self.loaded)
        result.bytes_loaded = sum(self.loaded)
        result.files_failed = len(result.errors)
        result.entries_loaded = int(entries) - int(rejected)
        result.entries_rejected = int(rejected)
        result.entry_errors = [EntryRejected(*row) for row in con.execute(
            "select object_key, entry_index, line_number, reason from raw.entry_errors "
            "where load_id = ? order by object_key, entry_index limit ?",
            [self.load_id, ENTRY_SAMPLE]).fetchall()]


def _local_path(file: BatchFile) -> Path:
    if file.path is None:
        raise ValueError(f"{file.key}: DuckDB reads batch files from local paths; none given")
    return file.path


def _gunzip(source: Path, target: Path) -> bool:
    """Decompress a gzip bundle for read_blob, streaming; False when the gzip is damaged."""
    return gz.inflate(source, target, limit=1 << 62) == "done"


def migrate(con: Any) -> None:
    """Bring a RAW of the whole-bundle layout to the per-resource one (once, idempotent)."""
    columns = {r[0] for r in con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = 'raw' and table_name = 'fhir_bundles'").fetchall()}
    if "bundle" not in columns:
        return
    con.execute("begin transaction")
    try:
        con.execute(sql.MIGRATE_COLUMNS)
        con.execute(f"""
            create or replace temp table _classified as
            select object_key as key, null as name, bundle_type,
                   json_transform(bundle::varchar, '{sql.BUNDLE_STRUCT}').entry as entries,
                   load_id, loaded_at, cast(null as varchar) as reason
            from raw.fhir_bundles
        """)
        con.execute(sql.FLATTEN_BUNDLES)
        con.execute("""
            insert into raw.fhir_resources
            select c.key, c.entry_index, c.line_number, c.resource_type, c.resource_id,
                   c.full_url, c.request_method, c.request_url, c.request_if_none_exist,
                   c.bundle_type, c.resource, b.load_id, b.loaded_at
            from _candidates as c join raw.fhir_bundles as b on b.object_key = c.key
            where c.reason is null
        """)
        # Entries RAW held that the load-time rules refuse now: quarantined, not dropped.
        con.execute("""
            insert into raw.entry_errors
            select b.load_id, c.key, c.entry_index, c.line_number, c.resource_type,
                   c.resource_id, c.reason, b.loaded_at, null, null
            from _candidates as c join raw.fhir_bundles as b on b.object_key = c.key
            where c.reason is not null
        """)
        con.execute("""
            update raw.fhir_bundles as b
            set entries = n.entries, entries_rejected = n.rejected, file_format = 'bundle'
            from (select key, count(*) as entries,
                         count(*) filter (where reason is not null) as rejected
                  from _candidates group by key) as n
            where n.key = b.object_key
        """)
        con.execute("alter table raw.fhir_bundles drop column bundle")
        con.execute("drop table _classified; drop table _candidates")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    for table in ("fhir_bundles", "load_errors", "entry_errors"):
        keys = con.execute(f"select distinct object_key from raw.{table} "
                           "where source_name is null").fetchall()
        if keys:  # executemany refuses an empty list of parameter sets
            con.executemany(f"update raw.{table} set source_name = ? where object_key = ?",
                            [(files.source_name(k), k) for (k,) in keys])
