"""The ``validate`` stage: a Great Expectations suite over the pairs manifest.

The suite does not trust the manifest alone: every HR and LR file is opened
and fully decoded, one at a time per core, and what the files really are (present, decodable, mode,
size, hash) is added to the table as columns the expectations check beside
the manifest's own claims. What the source images were (Pillow mode, bit
depth, perceptual hash) is judged from the manifest alone: it was recorded
while the original files were decoded, and only 8-bit RGB copies remain.
GX renders the results as Data Docs in ``report_dir``; ``summary.json``
beside them holds the machine-readable verdict. A failed suite raises :class:`DataError` naming the bad files.

What passes is written as the manifest training reads, in its own folder
(the validate stage's output; ``data/pairs`` stays the pairs stage's). With
``validate.on_bad: drop`` the rows that failed a row-level check are left out
of it and listed with their reasons in ``report_dir/quarantine.csv``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from PIL import Image

from gansr.atomic import atomic_path, write_json
from gansr.config import DEGRADATIONS, PairsConfig, ValidateConfig
from gansr.data.near_duplicates import near_duplicate_groups
from gansr.data.pairs import MANIFEST_COLUMNS, SPLITS, read_manifest, write_manifest
from gansr.data.parallel import available_cores, parallel_map
from gansr.errors import DataError
from gansr.imageio import FAITHFUL_MODES
from gansr.layout import DATA_DOCS_INDEX, QUARANTINE_FILE

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.expectations import Expectation

SIDES = ("hr", "lr")
BIT_DEPTHS = (8, 16)  # of the source images: 32-bit (I, F) data has no faithful 8-bit rendering
_PHASH = re.compile(r"[0-9a-f]{16}")
MAX_LISTED = 10  # offending files named per check in the error message
ROW = "manifest_row"
QUARANTINE_COLUMNS = ["name", "file", "reason"]
# The one table-level check that dropping rows can leave satisfied: it is judged
# again on the rows that remain.
ROW_COUNT = "expect_table_row_count_to_be_between"


def validate_pairs(
    pairs_dir: Path,
    report_dir: Path,
    validated_dir: Path,
    scale: int,
    pairs: PairsConfig,
    cfg: ValidateConfig,
) -> dict[str, Any]:
    """Check the pairs in ``pairs_dir``; write the manifest that passed to ``validated_dir``.

    ``report_dir`` (Data Docs, ``summary.json``, ``quarantine.csv``) is
    replaced as a whole, also when validation fails. With ``cfg.on_bad ==
    "drop"`` bad rows are quarantined instead of failing the stage, unless a
    check fails that dropping rows cannot fix (e.g. a missing column) or too
    few train/test pairs remain. Returns the summary; raises
    :class:`DataError` listing the offending files otherwise.
    """
    pairs_dir, report_dir = Path(pairs_dir), Path(report_dir)
    manifest = read_manifest(pairs_dir, check_columns=False).reset_index(drop=True)
    table = add_file_facts(manifest, pairs_dir, scale, pairs.near_duplicate_bits)
    expectations = build_expectations(scale, pairs, cfg)
    with atomic_path(report_dir) as staged:
        result = _run_suite(table, expectations, staged)
        failed = failed_results(result)
        summary = summarize(result, failed, table)
        quarantined = quarantine(failed, table) if cfg.on_bad == "drop" else []
        kept = manifest.drop(index=sorted({entry.row for entry in quarantined}))
        summary |= {"quarantined": len(manifest) - len(kept), "kept_per_split": _per_split(kept)}
        _write_quarantine(staged / QUARANTINE_FILE, quarantined)
        write_json(staged / "summary.json", summary)
    problem = _problem(summary, cfg)
    if problem is not None:
        raise DataError("\n".join([failure_message(summary, pairs_dir, report_dir), *problem]))
    with atomic_path(validated_dir) as staged:
        staged.mkdir()
        write_manifest(rebased(kept.reset_index(drop=True), pairs_dir, validated_dir), staged)
    return summary


def rebased(manifest: pd.DataFrame, pairs_dir: Path, folder: Path) -> pd.DataFrame:
    """``manifest`` with its image paths made relative to ``folder`` (still pointing into ``pairs_dir``).

    Every manifest's paths are relative to the folder holding it, so whoever
    reads ``folder/manifest.parquet`` finds the images the same way.
    """
    prefix = Path(os.path.relpath(pairs_dir, folder))
    moved = manifest.copy()
    for side in SIDES:
        moved[f"{side}_path"] = [(prefix / path).as_posix() for path in manifest[f"{side}_path"]]
    return moved


# --- facts read from the files themselves ----------------------------------------------


@dataclass(frozen=True)
class FileFacts:
    """What an image file really is; ``None`` where it could not be learnt."""

    exists: bool = False
    decodes: bool | None = None  # None: nothing to decode (missing file)
    mode: str | None = None
    height: int | None = None
    width: int | None = None
    sha256: str | None = None


def read_file_facts(path: Path | None) -> FileFacts:
    """Open and fully decode one image; a broken file is a fact, not a crash."""
    if path is None or not path.is_file():
        return FileFacts()
    try:
        data = path.read_bytes()
    except OSError:
        return FileFacts(exists=True, decodes=False)
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        with warnings.catch_warnings():
            # A huge photo is not a decompression bomb here; the size check judges it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                img.load()  # headers alone parse fine for a truncated PNG
                mode, (width, height) = img.mode, img.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return FileFacts(exists=True, decodes=False, sha256=sha256)
    return FileFacts(True, True, mode, height, width, sha256)


def add_file_facts(
    manifest: pd.DataFrame, pairs_dir: Path, scale: int, near_duplicate_bits: int
) -> pd.DataFrame:
    """Return ``manifest`` plus columns of file facts and per-row verdicts the suite checks.

    Near-duplicates (perceptual hashes within ``near_duplicate_bits``; 0: not
    judged) are grouped again from the hashes, not taken from the split.
    """
    table = manifest.copy()
    # GX names offending rows by these columns, in results and in Data Docs; the row
    # number identifies a row even when its name is missing or duplicated.
    table[ROW] = range(len(table))
    for side in SIDES:
        paths = _column(manifest, f"{side}_path")
        files = [pairs_dir / p if isinstance(p, str) and p else None for p in paths]
        facts = list(parallel_map(read_file_facts, files, available_cores(), f"validate {side}"))
        table[f"{side}_file_exists"] = [f.exists for f in facts]
        table[f"{side}_file_decodes"] = _objects([f.decodes for f in facts])
        table[f"{side}_file_mode"] = _objects([f.mode for f in facts])
        table[f"{side}_file_height"] = pd.array([f.height for f in facts], dtype="Int64")
        table[f"{side}_file_width"] = pd.array([f.width for f in facts], dtype="Int64")
        table[f"{side}_file_sha256"] = _objects([f.sha256 for f in facts])
        # Sizes as "HxW" text, so one column-pair expectation compares both sides of an image.
        table[f"{side}_size"] = _sizes(_ints(manifest, f"{side}_height"), _ints(manifest, f"{side}_width"))
        table[f"{side}_file_size"] = _sizes(table[f"{side}_file_height"], table[f"{side}_file_width"])
    # Judged on the decoded files: they are what training reads.
    table[f"lr_file_size_x{scale}"] = _sizes(table["lr_file_height"] * scale, table["lr_file_width"] * scale)
    # None (unjudged) only when the column is missing: the columns check reports that.
    table["degradation_is_recorded"] = _objects(
        [_is_degradation_record(value) for value in manifest["degradation"]]
        if "degradation" in manifest else [None] * len(manifest)
    )
    table["hr_min_side"] = _objects(
        table[["hr_file_height", "hr_file_width"]].min(axis=1, skipna=False)
    )
    split = _column(manifest, "split")
    for key in ("group", "hr_sha256"):
        table[f"{key}_in_one_split"] = _one_value_per_key(_column(manifest, key), split)
    # Identical tiles of one image (a flat sky) are fine; a copy of another image is not.
    table["hr_sha256_in_one_source"] = _one_value_per_key(_column(manifest, "hr_sha256"),
                                                          _column(manifest, "source"))
    phash = _column(manifest, "phash")
    table["phash_is_hash"] = _objects([isinstance(h, str) and bool(_PHASH.fullmatch(h)) for h in phash])
    if near_duplicate_bits:
        table["near_duplicates_in_one_split"] = _one_value_per_key(
            _near_duplicate_groups(phash, table["phash_is_hash"], near_duplicate_bits), split
        )
    return table


def _near_duplicate_groups(phash: pd.Series, valid: pd.Series, max_bits: int) -> pd.Series:
    """Per row, a label shared by its near-duplicates; None where the hash is not one."""
    rows = phash[valid.astype(bool)]
    groups = pd.Series([None] * len(phash), index=phash.index, dtype=object)
    groups[rows.index] = near_duplicate_groups(list(rows), max_bits)
    return groups


def _is_degradation_record(value: Any) -> bool:
    """Is ``value`` the JSON record the pairs stage writes (a known ``kind``)?"""
    try:
        record = json.loads(value)
    except (TypeError, ValueError):  # null, a number, not JSON
        return False
    return isinstance(record, dict) and record.get("kind") in DEGRADATIONS


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A manifest column, or all-missing if the manifest lacks it (the suite flags that)."""
    if name in frame:
        return frame[name]
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


def _ints(frame: pd.DataFrame, name: str) -> pd.Series:
    return pd.to_numeric(_column(frame, name), errors="coerce").astype("Int64")


def _sizes(heights: pd.Series, widths: pd.Series) -> pd.Series:
    """``"HxW"`` per row, None where either side is unknown."""
    return _objects([None if pd.isna(h) or pd.isna(w) else f"{h}x{w}" for h, w in zip(heights, widths)])


def _objects(values: Any) -> pd.Series:
    """Plain Python values with None for unknown: GX map expectations skip None."""
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    return series.astype(object).where(series.notna(), None)


def _one_value_per_key(key: pd.Series, value: pd.Series) -> pd.Series:
    """Per row: do all rows sharing this key have one value (e.g. one split)?

    None (unjudged) where the key is unknown or no row of it has a value: the
    columns check reports a missing column.
    """
    values_per_key = value.groupby(key, dropna=True).transform("nunique")  # NaN where key is
    return _objects(values_per_key.eq(1).where(values_per_key.gt(0)))


# --- the suite ---------------------------------------------------------------------------


def build_expectations(scale: int, pairs: PairsConfig, cfg: ValidateConfig) -> list[Expectation]:
    """The expectations the pairs must meet, each with a description a user can read.

    ``meta["show"]`` names the columns that identify an offending row in messages.
    """
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    def check(expectation_cls: type, description: str, show: list[str], **kwargs: Any) -> Any:
        return expectation_cls(description=description, meta={"show": show}, **kwargs)

    checks = [
        check(gxe.ExpectTableColumnsToMatchSet, "manifest has all required columns", [],
              column_set=list(MANIFEST_COLUMNS), exact_match=False),
        check(gxe.ExpectColumnValuesToBeInSet, f"split is one of {', '.join(SPLITS)}",
              ["name", "split"], column="split", value_set=list(SPLITS)),
        check(gxe.ExpectColumnValuesToBeUnique, "name is unique", ["name"], column="name"),
        check(gxe.ExpectColumnValuesToBeInSet,
              "HR image is not a copy of another source image's (same hr_sha256)",
              ["hr_path", "source", "split"], column="hr_sha256_in_one_source", value_set=[True]),
        check(gxe.ExpectColumnValuesToBeInSet, "identical HR images stay in one split",
              ["hr_path", "split"], column="hr_sha256_in_one_split", value_set=[True]),
        check(gxe.ExpectColumnValuesToBeInSet, "each group (source image) stays in one split",
              ["name", "group", "split"], column="group_in_one_split", value_set=[True]),
        check(gxe.ExpectColumnValuesToBeInSet, "source image mode is one gansr converts to RGB faithfully",
              ["name", "mode"], column="mode", value_set=sorted(FAITHFUL_MODES)),
        check(gxe.ExpectColumnValuesToBeInSet, f"source image has {' or '.join(map(str, BIT_DEPTHS))} "
              "bits per sample", ["name", "bit_depth"], column="bit_depth", value_set=list(BIT_DEPTHS)),
        check(gxe.ExpectColumnValuesToBeInSet, "phash is a 64-bit perceptual hash (16 hex digits)",
              ["name", "phash"], column="phash_is_hash", value_set=[True]),
        check(gxe.ExpectColumnPairValuesToBeEqual, f"HR size is LR size x {scale}",
              ["hr_path"], column_A="hr_file_size", column_B=f"lr_file_size_x{scale}",
              ignore_row_if="either_value_is_missing"),
        check(gxe.ExpectColumnValuesToBeBetween, f"HR shorter side is >= {pairs.min_hr_size} px",
              ["hr_path"], column="hr_min_side", min_value=pairs.min_hr_size),
        check(gxe.ExpectColumnValuesToBeInSet, "degradation records how the LR image was made",
              ["lr_path"], column="degradation_is_recorded", value_set=[True]),
        check(gxe.ExpectTableRowCountToBeBetween, f"at least {cfg.min_train_pairs} train pairs",
              [], min_value=cfg.min_train_pairs, row_condition=Column("split") == "train"),
        check(gxe.ExpectTableRowCountToBeBetween, f"at least {cfg.min_test_pairs} test pairs",
              [], min_value=cfg.min_test_pairs, row_condition=Column("split") == "test"),
    ]
    if pairs.near_duplicate_bits:
        checks.append(check(
            gxe.ExpectColumnValuesToBeInSet,
            f"near-duplicate images (pHash within {pairs.near_duplicate_bits} bits) stay in one split",
            ["name", "split"], column="near_duplicates_in_one_split", value_set=[True],
        ))
    for column in ("name", "hr_path", "lr_path"):
        checks.append(check(gxe.ExpectColumnValuesToNotBeNull, f"{column} is set",
                            ["name"], column=column))
    for side in SIDES:
        label, path = side.upper(), [f"{side}_path"]
        checks += [
            check(gxe.ExpectColumnValuesToBeInSet, f"{label} file exists", path,
                  column=f"{side}_file_exists", value_set=[True]),
            check(gxe.ExpectColumnValuesToBeInSet, f"{label} file decodes as an image", path,
                  column=f"{side}_file_decodes", value_set=[True]),
            check(gxe.ExpectColumnValuesToBeInSet, f"{label} file is RGB",
                  path + [f"{side}_file_mode"], column=f"{side}_file_mode", value_set=["RGB"]),
            check(gxe.ExpectColumnPairValuesToBeEqual, f"{label} size in the manifest matches the file",
                  path, column_A=f"{side}_size", column_B=f"{side}_file_size",
                  ignore_row_if="either_value_is_missing"),
            check(gxe.ExpectColumnPairValuesToBeEqual, f"{side}_sha256 in the manifest matches the file", path,
                  column_A=f"{side}_sha256", column_B=f"{side}_file_sha256",
                  ignore_row_if="either_value_is_missing"),
        ]
    for position, expectation in enumerate(checks):
        expectation.meta["position"] = position  # GX returns results in its own order
    return checks


def _run_suite(
    table: pd.DataFrame, expectations: list[Expectation], docs_dir: Path
) -> ExpectationSuiteValidationResult:
    """Validate ``table`` through a GX checkpoint whose data docs site is ``docs_dir``."""
    # GX is slow to import (seconds): only the validate stage should pay for it.
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          # absolute: GX would resolve a relative one against its own root
                          "base_directory": str(docs_dir.resolve())},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            data_docs_sites={"validation": site},
            analytics_enabled=False,  # the stage runs offline and must not phone home
            progress_bars=ProgressBarsConfig(globally=False),  # no tqdm bars in DVC logs
        ),
    )
    batch = (
        context.data_sources.add_pandas("pandas")
        .add_dataframe_asset("pairs_manifest")
        .add_batch_definition_whole_dataframe("all_pairs")
    )
    suite = context.suites.add(gx.ExpectationSuite(name="pairs", expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="pairs", data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="validate_pairs",
            validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
            # COMPLETE lists every offending row, not just a sample of 20.
            result_format={
                "result_format": "COMPLETE",
                "unexpected_index_column_names": [c for c in (ROW, "name") if c in table],
            },
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": table})
    (suite_result,) = result.run_results.values()
    return suite_result


# --- reporting ---------------------------------------------------------------------------


def failed_results(result: ExpectationSuiteValidationResult) -> list[ExpectationValidationResult]:
    """The failed checks, in the order the suite lists them (GX returns its own order)."""
    return sorted(
        (r for r in result.results if not r.success),
        key=lambda r: r.expectation_config.meta.get("position", 0),
    )


def summarize(
    result: ExpectationSuiteValidationResult, failed: list[ExpectationValidationResult], table: pd.DataFrame
) -> dict[str, Any]:
    """The verdict as plain JSON: counts, rows per split, and each failed check's rows.

    ``success`` means every expectation was met. Files are named as in the
    manifest (relative to the pairs folder), so the summary does not depend
    on where the repository is checked out.
    """
    failures = [_failure(r, table) for r in failed]
    return {
        "success": bool(result.success),
        "expectations": len(result.results),
        "failed": len(failures),
        "rows": len(table),
        "rows_per_split": _per_split(table),
        "failures": failures,
    }


@dataclass(frozen=True)
class Quarantined:
    """A row left out of the validated manifest, and the check it failed."""

    row: int
    name: str
    file: str
    reason: str


def quarantine(failed: list[ExpectationValidationResult], table: pd.DataFrame) -> list[Quarantined]:
    """Every row a failed row-level check names, once per check, ordered by row."""
    entries = [
        Quarantined(row, _row_name(table, row), _row_file(table, row, _shown(r)),
                    r.expectation_config.description)
        for r in failed
        for row in _unexpected_rows(r)
    ]
    return sorted(entries, key=lambda entry: entry.row)  # stable: a row's checks stay in suite order


def _write_quarantine(path: Path, entries: list[Quarantined]) -> None:
    rows = [[entry.name, entry.file, entry.reason] for entry in entries]
    pd.DataFrame(rows, columns=QUARANTINE_COLUMNS).to_csv(path, index=False, lineterminator="\n")


def _problem(summary: dict[str, Any], cfg: ValidateConfig) -> list[str] | None:
    """None if the stage passes, else what to add to the failure message (maybe nothing)."""
    if summary["success"]:
        return None
    if cfg.on_bad == "fail":
        return []
    lines = [f"  {failure['check']}: not fixed by dropping rows" for failure in summary["failures"]
             if not failure["rows"] and failure["expectation"] != ROW_COUNT]
    kept = summary["kept_per_split"]
    for split, minimum in (("train", cfg.min_train_pairs), ("test", cfg.min_test_pairs)):
        if kept[split] < minimum:
            lines.append(f"  after dropping {summary['quarantined']} bad pairs, {kept[split]} {split} "
                         f"pairs remain, fewer than validate.min_{split}_pairs={minimum}")
    return lines or None


def _per_split(frame: pd.DataFrame) -> dict[str, int]:
    splits = _column(frame, "split").dropna().astype(str).value_counts()
    return {split: int(splits.get(split, 0)) for split in SPLITS}


def _failure(r: ExpectationValidationResult, table: pd.DataFrame) -> dict[str, Any]:
    config = r.expectation_config
    details = r.result or {}
    rows = _unexpected_rows(r)
    show = _shown(r)
    failure: dict[str, Any] = {
        "check": config.description,
        "expectation": config.type,
        "column": config.kwargs.get("column"),
        "rows": [_row_name(table, i) for i in rows],
        "files": [_row_label(table, i, show) for i in rows],
    }
    missing_columns = ((details.get("details") or {}).get("mismatched") or {}).get("missing")
    if missing_columns:
        failure["missing_columns"] = sorted(missing_columns)
    elif "observed_value" in details:
        failure["observed"] = _observed(details["observed_value"])
    error = _exception_message(r.exception_info)
    if error:
        failure["error"] = error
    return failure


def _unexpected_rows(r: ExpectationValidationResult) -> list[int]:
    """The row numbers a row-level check failed on (none for a table-level check)."""
    return [int(i[ROW]) for i in (r.result or {}).get("unexpected_index_list") or []]


def _shown(r: ExpectationValidationResult) -> list[str]:
    """The columns that identify an offending row of this check (see build_expectations)."""
    return (r.expectation_config.meta or {}).get("show", [])


def _row_file(table: pd.DataFrame, row: int, show: list[str]) -> str:
    """The file a check complains about: its first shown path column, else the row's HR file."""
    column = next((c for c in show if c.endswith("_path")), "hr_path")
    value = table[column].iloc[row] if column in table else None
    return str(value) if pd.notna(value) else ""


def _row_name(table: pd.DataFrame, row: int) -> str:
    name = table["name"].iloc[row] if "name" in table else None
    return str(name) if pd.notna(name) else f"<row {row}>"


def _row_label(table: pd.DataFrame, row: int, show: list[str]) -> str:
    """How a user finds the row: its file (or name), then context such as split."""
    if not show:
        return _row_name(table, row)
    first, *rest = show
    has_path = first.endswith("_path") and first in table and pd.notna(table[first].iloc[row])
    head = str(table[first].iloc[row]) if has_path else _row_name(table, row)
    extra = [str(table[c].iloc[row]) for c in rest if c in table]
    return f"{head} ({', '.join(extra)})" if extra else head


def _observed(value: Any) -> Any:
    """A table-level check's observed value as JSON (a row count, in practice)."""
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def _exception_message(exception_info: dict) -> str | None:
    """GX nests exception info per metric when a check could not run (e.g. missing column)."""
    if exception_info.get("raised_exception"):
        return exception_info.get("exception_message")
    for info in exception_info.values():
        if isinstance(info, dict) and info.get("raised_exception"):
            return info.get("exception_message")
    return None


def failure_message(summary: dict[str, Any], pairs_dir: Path, report_dir: Path) -> str:
    """A summary line, then one line per failed check naming up to MAX_LISTED files."""
    lines = [
        f"validation failed: {summary['failed']} of {summary['expectations']} expectations "
        f"on {pairs_dir.as_posix()}; see {(report_dir / DATA_DOCS_INDEX).as_posix()}"
    ]
    for failure in summary["failures"]:
        if "error" in failure:
            what = f"could not run: {failure['error']}"
        elif "missing_columns" in failure:
            what = "missing " + ", ".join(failure["missing_columns"])
        elif failure["files"]:
            files = failure["files"]
            what = ", ".join(files[:MAX_LISTED])
            if len(files) > MAX_LISTED:
                what += f" and {len(files) - MAX_LISTED} more"
        else:
            what = f"found {failure.get('observed')}"
        lines.append(f"  {failure['check']}: {what}")
    return "\n".join(lines)
