"""The embedded explanation store: one SQLite file, many readers, one writer at a time.

* WAL journal: readers never block the writer nor each other, across processes; each read
  runs in one transaction, so it sees whole writes only.
* Every write (one image: its base, one row per method and its summary) is one
  ``BEGIN IMMEDIATE`` transaction: all of it lands or none of it (a SIGKILL mid-write,
  a full disk, a lock timeout leave the store as it was).
* ``synchronous=NORMAL``: a committed write survives a crash of the process; only a power
  cut can lose the last commits, never corrupt the file.
* ``PRAGMA application_id`` marks the file as ours; ``PRAGMA user_version`` is the schema
  version, upgraded by :data:`MIGRATIONS` in one transaction when an older store is opened.
  Rows keep their configuration JSON, so a migration that changes keys can re-key them.
* Payloads are zip + npy (``codec``), never pickle.
* The trust metrics are rows of ``measures`` (schema 2), keyed by the results they score
  and their settings (``entries.encode_measures``); the top class's AUCs are columns, so a
  gallery sorts by them without decoding a payload.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from ..engine.request import SCHEMA_VERSION, ExplainRequest, canonical_json, package_version
from ..engine.results import Explanation
from .codec import CodecError
from .entries import (
    FAITHFULNESS_COLUMNS,
    EncodedExplanation,
    decode_explanation,
    decode_measures,
    encode_explanation,
    measure_key,
    top_json,
)

__all__ = [
    "APPLICATION_ID", "MIGRATIONS", "ExplanationStore", "ImageSummary", "StoredResult", "StoreError",
    "StoreFullError", "StoreLockedError", "default_store_path",
]

APPLICATION_ID = 0x58414950  # "XAIP"
SORT_COLUMNS = ("image_id", "label_name", "predicted_name", "confidence", "correct", "anchor_precision",
                "stability", "updated_at")
"""Fixed sort keys of :meth:`ExplanationStore.summaries`; ``"deletion_auc:lime"`` and the other
:data:`FAITHFULNESS_COLUMNS` of a method sort by its stored faithfulness for the top class."""


class StoreError(RuntimeError):
    """The store cannot be used; the message names the file and what to do."""


class StoreLockedError(StoreError):
    """Another process held the write lock longer than the timeout."""


class StoreFullError(StoreError):
    """The disk (or the store's size cap) is full; the write was rolled back."""


def default_store_path() -> Path:
    """``$XAI_PANEL_STORE``, else ``$XAI_PANEL_CACHE/store.sqlite``, else the user cache dir."""
    from ..config import config

    cfg = config()
    if cfg.store:
        return Path(cfg.store).expanduser()
    if cfg.cache:
        return cfg.cache_folder / "store.sqlite"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("xai-panel")) / "store.sqlite"


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    # Not executescript(): it commits first, and a migration must stay one transaction.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _create_v1(conn: sqlite3.Connection) -> None:
    _run_script(conn, """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE bases (
            base_key TEXT PRIMARY KEY,
            image_hash TEXT NOT NULL,
            model_id TEXT NOT NULL,
            payload BLOB NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE TABLE results (
            key TEXT PRIMARY KEY,
            base_key TEXT NOT NULL REFERENCES bases(base_key),
            image_hash TEXT NOT NULL,
            model_id TEXT NOT NULL,
            method TEXT NOT NULL,
            config_key TEXT NOT NULL,
            config TEXT NOT NULL,
            version TEXT NOT NULL,
            anchor_precision REAL,
            wall_seconds REAL NOT NULL,
            forward_passes INTEGER NOT NULL,
            payload BLOB NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX results_by_image ON results(image_hash, model_id, method);
        CREATE INDEX results_by_config ON results(config_key, image_hash);
        CREATE TABLE images (
            image_hash TEXT NOT NULL,
            model_id TEXT NOT NULL,
            image_id TEXT,
            label INTEGER,
            label_name TEXT,
            predicted INTEGER NOT NULL,
            predicted_name TEXT NOT NULL,
            confidence REAL NOT NULL,
            correct INTEGER,
            top TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (image_hash, model_id)
        );
        CREATE INDEX images_by_label ON images(model_id, label_name);
        CREATE TABLE metrics (
            image_hash TEXT NOT NULL,
            model_id TEXT NOT NULL,
            name TEXT NOT NULL,
            value REAL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (image_hash, model_id, name)
        );
        CREATE TABLE files (
            path TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            image_hash TEXT NOT NULL
        );
    """)


def _create_v2(conn: sqlite3.Connection) -> None:
    # The trust metrics (``entries.EncodedMeasure``). Schema 1 never stored any, so an old
    # file gains the empty table and keeps every row and key as it was.
    _run_script(conn, """
        CREATE TABLE measures (
            key TEXT PRIMARY KEY,
            base_key TEXT NOT NULL,
            image_hash TEXT NOT NULL,
            model_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            method TEXT,
            result_keys TEXT NOT NULL,
            settings TEXT NOT NULL,
            deletion_auc REAL,
            insertion_auc REAL,
            random_deletion_auc REAL,
            random_insertion_auc REAL,
            payload BLOB NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX measures_by_image ON measures(image_hash, model_id, kind, method);
        CREATE INDEX measures_by_base ON measures(base_key)
    """)


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _create_v1, 2: _create_v2}
"""Step to schema N from N-1 (1: from an empty file). Run in order, in one transaction."""


@dataclass(frozen=True)
class ImageSummary:
    """What a gallery sorts and filters by, for one image and model."""

    image_hash: str
    model_id: str
    image_id: str | None
    label: int | None
    label_name: str | None
    predicted: int
    predicted_name: str
    confidence: float
    correct: bool | None  # None when the true label is unknown
    anchor_precision: float | None  # of the top-1 class, from the latest stored anchors row
    stability: float | None  # metric "stability", when one was stored (put_metric)
    methods: tuple[str, ...]  # methods with a stored result (any settings)
    top: tuple[tuple[int, str, float], ...]
    # method -> FAITHFULNESS_COLUMNS of the top class, from the method's newest stored faithfulness
    faithfulness: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def score(self, sort_key: str) -> float | None:
        """The value :meth:`ExplanationStore.summaries` sorts by for ``sort_key`` (None: not stored)."""
        column, _, method = sort_key.partition(":")
        if method:
            return self.faithfulness.get(method, {}).get(column)
        return getattr(self, "image_id" if column == "name" else column)


@dataclass(frozen=True)
class StoredResult:
    """One stored row, without its payload."""

    key: str
    image_hash: str
    model_id: str
    method: str
    config: dict
    version: str
    created_at: float
    nbytes: int


class ExplanationStore:
    """Explanations keyed by image, model, method and settings, in one SQLite file.

    ``path`` defaults to :func:`default_store_path`. ``timeout`` is how long a write waits
    for another writer before :class:`StoreLockedError`. ``max_bytes`` caps the file size
    (writes beyond it fail with :class:`StoreFullError`, as on a full disk). ``create=False``
    refuses to create a missing file. Safe to share between threads (one connection each)
    and to open from several processes at once.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, timeout: float = 30.0,
                 max_bytes: int | None = None, create: bool = True):
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        self.timeout = float(timeout)
        self.max_bytes = max_bytes
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder; give the path of a store file (e.g. {self.path / 'store.sqlite'})")
        if not self.path.exists():
            if not create:
                raise StoreError(f"no store at {self.path}")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._conn()  # open, check and migrate now: errors surface at construction

    def __repr__(self) -> str:
        return f"ExplanationStore({str(self.path)!r})"

    # -- connections and errors ------------------------------------------------------
    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self._translate(exc, doing) from exc

    def _translate(self, exc: sqlite3.Error, doing: str) -> StoreError:
        text = str(exc)
        low = text.lower()
        if "locked" in low or "busy" in low:
            return StoreLockedError(
                f"{self.path} is locked by another process; gave up ({doing} it) after waiting {self.timeout:g} s "
                f"({text}). Wait for the other writer to finish or raise the timeout.")
        if "full" in low:
            cap = f" or the store's cap of {self.max_bytes:,} bytes" if self.max_bytes else ""
            return StoreFullError(
                f"no space left {doing} {self.path} (disk full{cap}); nothing of this write was stored "
                f"({text}). Free disk space or prune the store: xai-panel store prune.")
        if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in low or "malformed" in low
                                                        or "encrypted" in low):
            return StoreError(f"{self.path} is not an xai-panel store: {text}")
        return StoreError(f"{self.path}: {doing} failed: {text}")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._errors("opening"):
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        try:
            self._setup(conn)
        except BaseException:
            conn.close()
            raise
        self._local.conn = conn
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _setup(self, conn: sqlite3.Connection) -> None:
        with self._errors("opening"):
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]  # fails on non-SQLite files
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        if app_id != APPLICATION_ID and (app_id != 0 or tables):
            shown = ", ".join(sorted(tables)[:8]) or "none"
            raise StoreError(f"{self.path} is not an xai-panel store: it is an SQLite database of another "
                             f"application (application id {app_id:#x}, tables: {shown})")
        with self._errors("opening"):
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            if self.max_bytes:
                page = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count = {max(1, int(self.max_bytes) // page)}")
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: SQLite refused WAL mode (journal_mode={mode}); "
                             "a store must be on a local filesystem")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer xai-panel (store schema {version}; this "
                             f"version reads up to {SCHEMA_VERSION}). Upgrade xai-panel or use another --store.")
        if version < SCHEMA_VERSION:
            self._migrate(conn)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        with self._errors("upgrading"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    MIGRATIONS[step](conn)
                    conn.execute(f"PRAGMA user_version = {step}")
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('created_by', ?)", (package_version(),))
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_written_by', ?)", (package_version(),))
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite already rolled back (e.g. after SQLITE_FULL)

    @contextmanager
    def _write(self, doing: str = "writing to") -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with self._errors(doing):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: a consistent snapshot across several SELECTs."""
        conn = self._conn()
        with self._errors("reading"):
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        with self._all_lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.ProgrammingError:
                    pass  # created in another thread that is gone
            self._all.clear()
        self._local = threading.local()

    def __enter__(self) -> "ExplanationStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------
    def put(self, explanation: Explanation, image_hash: str, *, request: ExplainRequest | None = None,
            methods: Iterable[str] | None = None, record=None, image_id: str | None = None,
            label: int | None = None, label_name: str | None = None) -> tuple[str, ...]:
        """Store the completed methods of ``explanation`` (or ``methods`` of them); returns the row keys.

        ``image_hash`` is ``xai_panel.data.image_hash`` of the decoded image. ``record`` (an
        ``ImageRecord``) or ``image_id``/``label``/``label_name`` fill the image's summary.
        Pass it the partial explanations of ``explain(on_method=...)`` to store each method
        as it finishes. Rows with the same key are replaced (same inputs, same result).
        """
        encoded = encode_explanation(explanation, image_hash, request, methods)
        self.write(encoded, record=record, image_id=image_id, label=label, label_name=label_name)
        return tuple(r.key for r in encoded.rows)

    def write(self, encoded: EncodedExplanation, *, record=None, image_id: str | None = None,
              label: int | None = None, label_name: str | None = None) -> None:
        """Write one pre-encoded image (see ``encode_explanation``) in one transaction."""
        if record is not None:
            image_id = image_id if image_id is not None else record.id
            label = label if label is not None else record.label
            label_name = label_name if label_name is not None else record.label_name
        now = time.time()
        predicted, predicted_name, confidence = encoded.top[0] if encoded.top else (None, None, None)
        correct = None if label is None or predicted is None else int(int(label) == int(predicted))
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO bases VALUES (?, ?, ?, ?, ?)",
                         (encoded.base_key, encoded.image_hash, encoded.model_id, encoded.base_payload, now))
            conn.executemany(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(r.key, encoded.base_key, encoded.image_hash, encoded.model_id, r.method, r.config_key, r.config,
                  encoded.version, r.anchor_precision, r.wall_seconds, r.forward_passes, r.payload, now)
                 for r in encoded.rows])
            conn.executemany(
                "INSERT OR REPLACE INTO measures VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(m.key, encoded.base_key, encoded.image_hash, encoded.model_id, m.kind, m.method, m.result_keys,
                  m.settings, *m.top, m.payload, now) for m in encoded.measures])
            if predicted is not None:
                conn.execute("""
                    INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (image_hash, model_id) DO UPDATE SET
                        image_id = COALESCE(excluded.image_id, image_id),
                        label = COALESCE(excluded.label, label),
                        label_name = COALESCE(excluded.label_name, label_name),
                        correct = COALESCE(excluded.correct, CASE WHEN COALESCE(excluded.label, label) IS NULL
                                           THEN NULL ELSE COALESCE(excluded.label, label) = excluded.predicted END),
                        predicted = excluded.predicted, predicted_name = excluded.predicted_name,
                        confidence = excluded.confidence,
                        top = CASE WHEN json_array_length(excluded.top) >= json_array_length(top)
                                   THEN excluded.top ELSE top END,
                        updated_at = excluded.updated_at
                """, (encoded.image_hash, encoded.model_id, image_id, label, label_name, int(predicted),
                      predicted_name, float(confidence), correct, top_json(encoded.top), now))

    def put_metric(self, image_hash: str, model_id: str, name: str, value: float | None) -> None:
        """Store a per-image score (e.g. ``"stability"``) that summaries report."""
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?)",
                         (image_hash, model_id, name, None if value is None else float(value), time.time()))

    # -- reading -----------------------------------------------------------------------
    def get(self, image_hash: str, request: ExplainRequest, methods: Iterable[str] | None = None) -> Explanation | None:
        """The stored ``Explanation`` for this image and request, with the methods found.

        None when nothing of it is stored. Methods not stored are absent (empty dicts, no
        cost entry); :meth:`missing` tells which. Rows that no longer decode count as absent.
        The stored trust metrics of exactly these results come with them (``decode_measures``).
        """
        wanted = [m for m in request.methods if methods is None or m in set(methods)]
        keys = {request.result_key(image_hash, m): m for m in wanted}
        base_key = request.base_key(image_hash)
        with self._read() as conn:
            base = conn.execute("SELECT payload FROM bases WHERE base_key = ?", (base_key,)).fetchone()
            if base is None:
                return None
            marks = ",".join("?" * len(keys))
            rows = conn.execute(f"SELECT key, payload FROM results WHERE key IN ({marks})",
                                list(keys)).fetchall() if keys else []
            measures = [(kind, rk, st, bytes(p)) for kind, rk, st, p in conn.execute(
                "SELECT kind, result_keys, settings, payload FROM measures WHERE base_key = ? "
                "ORDER BY created_at DESC, key", (base_key,))]
        found = sorted(((keys[k], bytes(p)) for k, p in rows), key=lambda r: wanted.index(r[0]))
        explanation = self._decode(bytes(base[0]), found, request)
        return None if explanation is None else decode_measures(explanation, image_hash, request, measures)

    @staticmethod
    def _decode(base: bytes, found: list[tuple[str, bytes]], request: ExplainRequest) -> Explanation | None:
        try:
            return decode_explanation(base, found, request)
        except CodecError:
            # One bad row must not hide the others: decode them one by one, drop what fails.
            good = []
            for row in found:
                try:
                    decode_explanation(base, [row], request)
                    good.append(row)
                except CodecError:
                    continue
            try:
                return decode_explanation(base, good, request)
            except CodecError:
                return None

    def missing(self, image_hash: str, request: ExplainRequest) -> tuple[str, ...]:
        """The methods of ``request`` with no stored result for this image (no decoding)."""
        keys = {request.result_key(image_hash, m): m for m in request.methods}
        if not keys:
            return ()
        with self._read() as conn:
            marks = ",".join("?" * len(keys))
            have = {k for (k,) in conn.execute(f"SELECT key FROM results WHERE key IN ({marks})", list(keys))}
        return tuple(m for k, m in keys.items() if k not in have)

    def stored_images(self, request: ExplainRequest) -> dict[str, frozenset[str]]:
        """Image hash -> methods of ``request`` stored for it (one query per method, no decoding)."""
        out: dict[str, set[str]] = {}
        with self._read() as conn:
            for method in request.methods:
                for (h,) in conn.execute("SELECT image_hash FROM results WHERE config_key = ?",
                                         (request.config_key(method),)):
                    out.setdefault(h, set()).add(method)
        return {h: frozenset(m) for h, m in out.items()}

    def count(self, *, method: str | None = None, image_hash: str | None = None) -> int:
        """Number of result rows (optionally of one method and/or image)."""
        sql, args = "SELECT COUNT(*) FROM results WHERE 1", []
        if method:
            sql, args = sql + " AND method = ?", args + [method]
        if image_hash:
            sql, args = sql + " AND image_hash = ?", args + [image_hash]
        with self._read() as conn:
            return int(conn.execute(sql, args).fetchone()[0])

    def results(self, *, image_hash: str | None = None, model_id: str | None = None,
                method: str | None = None) -> list[StoredResult]:
        """Stored rows (without payloads), newest first."""
        sql = ("SELECT key, image_hash, model_id, method, config, version, created_at, length(payload) "
               "FROM results WHERE 1")
        args: list = []
        for column, value in (("image_hash", image_hash), ("model_id", model_id), ("method", method)):
            if value is not None:
                sql, args = sql + f" AND {column} = ?", args + [value]
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY created_at DESC", args).fetchall()
        return [StoredResult(k, h, m, meth, json.loads(c), v, t, n) for k, h, m, meth, c, v, t, n in rows]

    def load(self, key: str) -> Explanation:
        """The ``Explanation`` (one method) of a stored row, by its key (e.g. for export), with
        its stored faithfulness."""
        with self._read() as conn:
            row = conn.execute("SELECT r.method, r.config, r.payload, b.payload, r.image_hash FROM results r "
                               "JOIN bases b ON b.base_key = r.base_key WHERE r.key = ?", (key,)).fetchone()
            if row is None:
                raise KeyError(f"no stored result with key {key}")
            measures = [(kind, rk, st, bytes(p)) for kind, rk, st, p in conn.execute(
                "SELECT kind, result_keys, settings, payload FROM measures WHERE kind = 'faithfulness' "
                "AND result_keys = ? ORDER BY created_at DESC, key", (canonical_json({row[0]: key}),))]
        method, config, payload, base, image_hash = row
        config = json.loads(config)
        request = ExplainRequest(
            model_id=config["model_id"], methods=(method,), top_k=config["top_k"], seed=config["seed"],
            segmentation=config["segmentation"], segmentation_params=config["segmentation_params"],
            fill=config["fill"], settings={method: config["settings"]}, pool_size=config["pool_size"],
            version=config["version"], schema=config["schema"], labels=tuple(config.get("labels", ())))
        try:
            explanation = decode_explanation(bytes(base), [(method, bytes(payload))], request)
        except CodecError as exc:
            raise StoreError(f"{self.path}: stored result {key} cannot be read: {exc}") from None
        return decode_measures(explanation, image_hash, request, measures) if request.result_key(
            image_hash, method) == key else explanation

    def summaries(self, model_id: str | None = None, *, label: int | str | None = None,
                  correct: bool | None = None, image_hashes: Sequence[str] | None = None,
                  sort_by: str = "image_id", descending: bool = False, limit: int | None = None) -> list[ImageSummary]:
        """Per-image summaries for a gallery: filter by model, label (class index or label
        name), correctness or image; sort by any of :data:`SORT_COLUMNS` or by a method's stored
        faithfulness for the top class, e.g. ``"deletion_auc:lime"`` (missing values last)."""
        column, _, method = sort_by.partition(":")
        if method:
            from ..methods.base import available_methods

            if column not in FAITHFULNESS_COLUMNS or method not in available_methods():
                raise ValueError(f"sort_by {sort_by!r}: a faithfulness sort is COLUMN:METHOD with COLUMN one of "
                                 f"{', '.join(FAITHFULNESS_COLUMNS)} and METHOD one of {', '.join(available_methods())}")
            # ``column`` is one of the fixed names above; the method is a bound parameter
            order_by, order_args = (f"(SELECT ms.{column} FROM measures ms WHERE ms.image_hash = i.image_hash "
                                    "AND ms.model_id = i.model_id AND ms.kind = 'faithfulness' AND ms.method = ? "
                                    "ORDER BY ms.created_at DESC LIMIT 1)"), [method]
        elif sort_by in SORT_COLUMNS:
            order_by, order_args = sort_by, []
        else:
            raise ValueError(f"sort_by must be one of {', '.join(SORT_COLUMNS)} or COLUMN:METHOD "
                             f"(COLUMN one of {', '.join(FAITHFULNESS_COLUMNS)}), got {sort_by!r}")
        where, args = ["1"], []
        if model_id is not None:
            where.append("i.model_id = ?")
            args.append(model_id)
        if isinstance(label, str):
            where.append("i.label_name = ?")
            args.append(label)
        elif label is not None:
            where.append("i.label = ?")
            args.append(int(label))
        if correct is not None:
            where.append("i.correct = ?")
            args.append(int(bool(correct)))
        if image_hashes is not None:
            hashes = list(image_hashes)
            where.append(f"i.image_hash IN ({','.join('?' * len(hashes))})")
            args.extend(hashes)
        direction = "DESC" if descending else "ASC"
        sql = f"""
            SELECT i.image_hash, i.model_id, i.image_id, i.label, i.label_name, i.predicted, i.predicted_name,
                   i.confidence, i.correct,
                   (SELECT r.anchor_precision FROM results r WHERE r.image_hash = i.image_hash
                        AND r.model_id = i.model_id AND r.anchor_precision IS NOT NULL
                        ORDER BY r.created_at DESC LIMIT 1) AS anchor_precision,
                   (SELECT m.value FROM metrics m WHERE m.image_hash = i.image_hash AND m.model_id = i.model_id
                        AND m.name = 'stability') AS stability,
                   (SELECT group_concat(DISTINCT r.method) FROM results r WHERE r.image_hash = i.image_hash
                        AND r.model_id = i.model_id) AS methods,
                   i.top, i.updated_at
            FROM images i WHERE {' AND '.join(where)}
            ORDER BY {order_by} {direction} NULLS LAST, i.image_id ASC, i.image_hash ASC
        """
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        faithfulness: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
        with self._read() as conn:
            rows = conn.execute(sql, args + order_args).fetchall()
            model_filter = "" if model_id is None else " AND model_id = ?"
            for h, m, meth, *values in conn.execute(
                    f"SELECT image_hash, model_id, method, {', '.join(FAITHFULNESS_COLUMNS)} FROM measures "
                    f"WHERE kind = 'faithfulness'{model_filter} ORDER BY created_at ASC, key",
                    [] if model_id is None else [model_id]):
                faithfulness.setdefault((h, m), {})[meth] = {  # newest last, so it wins
                    c: v for c, v in zip(FAITHFULNESS_COLUMNS, values) if v is not None}
        from ..methods.base import available_methods

        order = available_methods()
        return [ImageSummary(
            image_hash=h, model_id=m, image_id=iid, label=lab, label_name=ln, predicted=p, predicted_name=pn,
            confidence=conf, correct=None if cor is None else bool(cor), anchor_precision=ap, stability=st,
            methods=tuple(x for x in order if x in (meths or "").split(",")),
            top=tuple(tuple(t) for t in json.loads(top)), faithfulness=faithfulness.get((h, m), {}),
        ) for h, m, iid, lab, ln, p, pn, conf, cor, ap, st, meths, top, _ in rows]

    def measured_methods(self, model_id: str | None = None) -> tuple[str, ...]:
        """Methods with a stored faithfulness for the top class (of ``model_id``), registry order."""
        from ..methods.base import available_methods

        sql = "SELECT DISTINCT method FROM measures WHERE kind = 'faithfulness' AND deletion_auc IS NOT NULL"
        with self._read() as conn:
            found = {m for (m,) in conn.execute(sql + ("" if model_id is None else " AND model_id = ?"),
                                                [] if model_id is None else [model_id])}
        return tuple(m for m in available_methods() if m in found)

    def measured_images(self, request: ExplainRequest, metrics: Iterable[str], settings: Mapping) -> frozenset[str]:
        """Hashes of the images whose stored results of ``request`` have every metric of ``metrics``
        (checked names, e.g. from ``check_metrics``) with ``settings`` (no decoding).

        Faithfulness is looked for on every ranked method (its result type ranks superpixels),
        the agreement on the whole set of requested methods.
        """
        from ..methods.base import method_class
        from ..metrics.trust import stored_settings

        metrics = set(metrics)
        ranked = [m for m in request.methods
                  if hasattr(method_class(m).result_type, "vector") and getattr(method_class(m).result_type, "ranked", True)]
        by_metric = stored_settings(settings)
        faith, agree = by_metric["faithfulness"], by_metric["agreement"]
        with self._read() as conn:
            stored = {k: h for k, h in conn.execute("SELECT key, image_hash FROM results WHERE model_id = ?",
                                                    (request.model_id,))}
            have = {k for (k,) in conn.execute("SELECT key FROM measures WHERE model_id = ?", (request.model_id,))}
        hashes = set(stored.values())
        out = set()
        for h in hashes:
            keys = {m: request.result_key(h, m) for m in request.methods}
            if not all(k in stored for k in keys.values()):
                continue
            if "faithfulness" in metrics and any(
                    measure_key("faithfulness", {m: keys[m]}, faith) not in have for m in ranked):
                continue
            if "agreement" in metrics and measure_key("agreement", keys, agree) not in have:
                continue
            out.add(h)
        return frozenset(out)

    # -- file -> hash memo (lets a resumed precompute skip decoding) -----------------------
    def file_hashes(self, paths: Iterable[str | os.PathLike]) -> dict[str, str]:
        """Known image hashes of files whose size and mtime are unchanged since hashed."""
        wanted = {}
        for p in paths:
            try:
                st = os.stat(p)
            except OSError:
                continue
            wanted[str(Path(p).resolve())] = (st.st_size, st.st_mtime_ns, str(p))
        out = {}
        with self._read() as conn:
            for path, size, mtime, h in conn.execute("SELECT path, size, mtime_ns, image_hash FROM files"):
                hit = wanted.get(path)
                if hit and hit[0] == size and hit[1] == mtime:
                    out[hit[2]] = h
        return out

    def remember_file_hashes(self, hashes: dict[str, str]) -> None:
        rows = []
        for p, h in hashes.items():
            try:
                st = os.stat(p)
            except OSError:
                continue
            rows.append((str(Path(p).resolve()), st.st_size, st.st_mtime_ns, h))
        if rows:
            with self._write() as conn:
                conn.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", rows)

    # -- maintenance -------------------------------------------------------------------
    def info(self) -> dict:
        """Path, size on disk, schema, and row counts per model, method and version."""
        with self._read() as conn:
            groups = conn.execute("SELECT model_id, method, version, COUNT(*), SUM(length(payload)) FROM results "
                                  "GROUP BY model_id, method, version ORDER BY model_id, method, version").fetchall()
            counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                      for t in ("bases", "results", "images", "metrics", "files", "measures")}
            base_bytes = conn.execute("SELECT COALESCE(SUM(length(payload)), 0) FROM bases").fetchone()[0]
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            schema = conn.execute("PRAGMA user_version").fetchone()[0]
        size = sum(os.path.getsize(p) for p in (self.path, Path(f"{self.path}-wal")) if os.path.exists(p))
        return {
            "path": str(self.path), "bytes_on_disk": size, "schema": schema, "meta": meta,
            "images": counts["images"], "results": counts["results"], "bases": counts["bases"],
            "base_payload_bytes": base_bytes, "metrics": counts["metrics"], "files": counts["files"],
            "measures": counts["measures"],
            "groups": [{"model_id": m, "method": meth, "version": v, "rows": n, "payload_bytes": b}
                       for m, meth, v, n, b in groups],
        }

    def prune(self, *, model_id: str | None = None, method: str | None = None, older_than: float | None = None,
              other_versions: bool = False, everything: bool = False, vacuum: bool = True) -> int:
        """Delete result rows matching every given condition; returns how many.

        ``older_than`` is in seconds; ``other_versions`` drops rows written by another
        xai-panel version (their keys can never match again). Bases and summaries left
        without rows go too. With no condition and not ``everything``, nothing is deleted.
        """
        where, args = [], []
        if model_id is not None:
            where.append("model_id = ?")
            args.append(model_id)
        if method is not None:
            where.append("method = ?")
            args.append(method)
        if older_than is not None:
            where.append("created_at < ?")
            args.append(time.time() - float(older_than))
        if other_versions:
            where.append("version != ?")
            args.append(package_version())
        if not where and not everything:
            return 0
        with self._write("pruning") as conn:
            cur = conn.execute("DELETE FROM results WHERE " + (" AND ".join(where) or "1"), args)
            deleted = cur.rowcount
            conn.execute("DELETE FROM bases WHERE base_key NOT IN (SELECT base_key FROM results)")
            # a measure goes with any of the results it scored
            conn.execute("DELETE FROM measures WHERE EXISTS (SELECT 1 FROM json_each(measures.result_keys) j "
                         "WHERE j.value NOT IN (SELECT key FROM results))")
            for table in ("images", "metrics"):
                conn.execute(f"DELETE FROM {table} WHERE NOT EXISTS (SELECT 1 FROM results r WHERE "
                             f"r.image_hash = {table}.image_hash AND r.model_id = {table}.model_id)")
            if everything and not where:
                conn.execute("DELETE FROM files")
        if vacuum and deleted:
            conn = self._conn()
            with self._errors("compacting"):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.execute("VACUUM")
        return deleted
