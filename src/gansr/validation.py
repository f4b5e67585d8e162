"""The ``validate`` stage: a Great Expectations suite over the pairs manifest.

The suite does not trust the manifest alone: every HR and LR file is opened
and fully decoded, and what the files really are (present, decodable, mode,
size, hash) is added to the table as columns the expectations check beside
the manifest's own claims. GX renders the results as Data Docs in
``report_dir``; ``summary.json`` beside them holds the machine-readable
verdict. A failed suite raises :class:`DataError` naming the bad files.
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from PIL import Image

from gansr.atomic import atomic_path, write_json
from gansr.config import ValidateConfig
from gansr.data.pairs import MANIFEST_COLUMNS, SPLITS, read_manifest
from gansr.errors import DataError

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.expectations import Expectation

SIDES = ("hr", "lr")
MAX_LISTED = 10  # offending files named per check in the error message
ROW = "manifest_row"


def validate_pairs(
    pairs_dir: Path,
    report_dir: Path,
    scale: int,
    min_hr_size: int,
    cfg: ValidateConfig,
) -> dict[str, Any]:
    """Check the pairs in ``pairs_dir`` and write Data Docs + ``summary.json`` to ``report_dir``.

    ``report_dir`` is replaced as a whole, also when validation fails.
    Returns the summary on success; raises :class:`DataError` listing the
    offending files otherwise.
    """
    pairs_dir, report_dir = Path(pairs_dir), Path(report_dir)
    table = add_file_facts(read_manifest(pairs_dir, check_columns=False).reset_index(drop=True),
                           pairs_dir, scale)
    expectations = build_expectations(scale, min_hr_size, cfg)
    with atomic_path(report_dir) as staged:
        result = _run_suite(table, expectations, staged)
        summary = summarize(result, table)
        write_json(staged / "summary.json", summary)
    if not summary["success"]:
        raise DataError(failure_message(summary, pairs_dir, report_dir))
    return summary


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


def add_file_facts(manifest: pd.DataFrame, pairs_dir: Path, scale: int) -> pd.DataFrame:
    """Return ``manifest`` plus columns of file facts and per-row verdicts the suite checks."""
    table = manifest.copy()
    # GX names offending rows by these columns, in results and in Data Docs; the row
    # number identifies a row even when its name is missing or duplicated.
    table[ROW] = range(len(table))
    for side in SIDES:
        paths = _column(manifest, f"{side}_path")
        facts = [read_file_facts(pairs_dir / p if isinstance(p, str) and p else None)
                 for p in paths]
        table[f"{side}_file_exists"] = [f.exists for f in facts]
        table[f"{side}_file_decodes"] = _objects([f.decodes for f in facts])
        table[f"{side}_file_mode"] = _objects([f.mode for f in facts])
        table[f"{side}_file_height"] = pd.array([f.height for f in facts], dtype="Int64")
        table[f"{side}_file_width"] = pd.array([f.width for f in facts], dtype="Int64")
        table[f"{side}_file_sha256"] = _objects([f.sha256 for f in facts])
        table[f"{side}_size_matches_file"] = _objects(
            (_ints(manifest, f"{side}_height") == table[f"{side}_file_height"])
            & (_ints(manifest, f"{side}_width") == table[f"{side}_file_width"])
        )
        table[f"{side}_sha256_matches_file"] = _objects(
            _column(manifest, f"{side}_sha256").astype("string")
            == table[f"{side}_file_sha256"].astype("string")
        )
    # Judged on the decoded files: they are what training reads.
    table["hr_is_lr_times_scale"] = _objects(
        (table["hr_file_height"] == table["lr_file_height"] * scale)
        & (table["hr_file_width"] == table["lr_file_width"] * scale)
    )
    table["hr_min_side"] = _objects(
        table[["hr_file_height", "hr_file_width"]].min(axis=1, skipna=False)
    )
    split = _column(manifest, "split")
    for key in ("group", "hr_sha256"):
        table[f"{key}_in_one_split"] = _in_one_split(_column(manifest, key), split)
    return table


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A manifest column, or all-missing if the manifest lacks it (the suite flags that)."""
    if name in frame:
        return frame[name]
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


def _ints(frame: pd.DataFrame, name: str) -> pd.Series:
    return pd.to_numeric(_column(frame, name), errors="coerce").astype("Int64")


def _objects(values: Any) -> pd.Series:
    """Plain Python values with None for unknown: GX map expectations skip None."""
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    return series.astype(object).where(series.notna(), None)


def _in_one_split(key: pd.Series, split: pd.Series) -> pd.Series:
    """Per row: is every row sharing this key in the same split? (None if key unknown)."""
    splits_per_key = split.groupby(key, dropna=True).transform("nunique")  # NaN where key is
    return _objects(splits_per_key.eq(1).where(splits_per_key.notna()))


# --- the suite ---------------------------------------------------------------------------


def build_expectations(scale: int, min_hr_size: int, cfg: ValidateConfig) -> list[Expectation]:
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
        check(gxe.ExpectColumnValuesToBeUnique, "HR image is not a duplicate (same hr_sha256)",
              ["hr_path", "split"], column="hr_sha256"),
        check(gxe.ExpectColumnValuesToBeInSet, "identical HR images stay in one split",
              ["hr_path", "split"], column="hr_sha256_in_one_split", value_set=[True]),
        check(gxe.ExpectColumnValuesToBeInSet, "each group (source image) stays in one split",
              ["name", "group", "split"], column="group_in_one_split", value_set=[True]),
        check(gxe.ExpectColumnValuesToBeInSet, f"HR size is LR size x {scale}",
              ["hr_path"], column="hr_is_lr_times_scale", value_set=[True]),
        check(gxe.ExpectColumnValuesToBeBetween, f"HR shorter side is >= {min_hr_size} px",
              ["hr_path"], column="hr_min_side", min_value=min_hr_size),
        check(gxe.ExpectTableRowCountToBeBetween, f"at least {cfg.min_train_pairs} train pairs",
              [], min_value=cfg.min_train_pairs, row_condition=Column("split") == "train"),
        check(gxe.ExpectTableRowCountToBeBetween, f"at least {cfg.min_test_pairs} test pairs",
              [], min_value=cfg.min_test_pairs, row_condition=Column("split") == "test"),
    ]
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
            check(gxe.ExpectColumnValuesToBeInSet, f"{label} size in the manifest matches the file",
                  path, column=f"{side}_size_matches_file", value_set=[True]),
            check(gxe.ExpectColumnValuesToBeInSet,
                  f"{side}_sha256 in the manifest matches the file", path,
                  column=f"{side}_sha256_matches_file", value_set=[True]),
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


def summarize(result: ExpectationSuiteValidationResult, table: pd.DataFrame) -> dict[str, Any]:
    """The verdict as plain JSON: counts, rows per split, and each failed check's rows.

    Files are named as in the manifest (relative to the pairs folder), so the
    summary does not depend on where the repository is checked out.
    """
    failed = sorted(
        (r for r in result.results if not r.success),
        key=lambda r: r.expectation_config.meta.get("position", 0),
    )
    failures = [_failure(r, table) for r in failed]
    splits = _column(table, "split").dropna().astype(str).value_counts()
    return {
        "success": bool(result.success),
        "expectations": len(result.results),
        "failed": len(failures),
        "rows": len(table),
        "rows_per_split": {split: int(splits.get(split, 0)) for split in SPLITS},
        "failures": failures,
    }


def _failure(r: ExpectationValidationResult, table: pd.DataFrame) -> dict[str, Any]:
    config = r.expectation_config
    details = r.result or {}
    rows = [int(i[ROW]) for i in details.get("unexpected_index_list") or []]
    show = (config.meta or {}).get("show", [])
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
        f"on {pairs_dir.as_posix()}; see {(report_dir / 'index.html').as_posix()}"
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
