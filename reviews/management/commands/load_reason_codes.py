import csv
from pathlib import Path

from django.core.management.base import CommandError

from reviews.services import reason_codes_load
from reviews.services.reason_codes import LOCALIZED
from workbench.errors import WorkbenchError
from workbench.management.base import OperatorCommand
from workbench.models import AISystem

REQUIRED_COLUMNS = ("code", "description")
COLUMNS = (*REQUIRED_COLUMNS, "customer_text")
# Optional columns: the ground and the explanation, and any customer text in
# another language, as customer_text_es, ground_es, explanation_es.
OPTIONAL_COLUMNS = ("ground", "explanation")
CARC_WORDING = "data/claims/carc_customer_wording.csv"


def reason_codes_read(path: Path) -> list[dict]:
    """The rows of a reason-code CSV (header ``code,description,customer_text``),
    each with the ``line`` it starts on, for ``reason_codes_load``."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return _rows(csv.reader(f, strict=True), path)
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from None


def _rows(reader, path: Path) -> list[dict]:
    try:
        header = [name.strip() for name in next(reader, [])]
        if not any(header):
            raise CommandError(f"{path} is empty; expected the header {','.join(COLUMNS)}")
        unknown = [
            name
            for name in header
            if name not in (*COLUMNS, *OPTIONAL_COLUMNS) and not LOCALIZED.match(name)
        ]
        missing = [name for name in REQUIRED_COLUMNS if name not in header]
        if unknown or missing or len(set(header)) != len(header):
            raise CommandError(
                f"{path}: the header is {','.join(header)}; expected {','.join(COLUMNS)} "
                "(and, optionally, ground, explanation and per-locale columns such as "
                "customer_text_es)"
            )
        if "customer_text" not in header:
            # Customers must get real wording, never a payer's internal text.
            raise CommandError(
                f"{path} has no customer_text column: every code needs the wording a "
                f"customer reads in their notice (for claim codes, see {CARC_WORDING})"
            )
        rows, end = [], reader.line_num
        for cells in reader:
            start, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # a blank line
            if len(cells) > len(header):
                raise CommandError(
                    f"{path}, line {start}: {len(cells)} cells where the header has "
                    f"{len(header)} (a comma in a value needs quotes)"
                )
            rows.append({"line": start, **dict(zip(header, cells, strict=False))})
        return rows
    except csv.Error as exc:
        raise CommandError(f"{path} is not valid CSV (line {reader.line_num}): {exc}") from None


class Command(OperatorCommand):
    help = (
        "Load an AI system's reason-code catalog from a CSV file with the header "
        "code,description,customer_text (optional columns: ground, explanation, and "
        "per-locale texts such as customer_text_es). Codes missing from the file are "
        "deactivated."
    )

    def add_arguments(self, parser):
        parser.add_argument("system", help="the AI system's slug, e.g. claims-ai")
        parser.add_argument("file", type=Path)

    def handle(self, *args, system, file, **options):
        actor = self.operator(options)
        ai_system = AISystem.objects.filter(slug=system).first()
        if ai_system is None:
            raise CommandError(f"no AI system {system!r}; create it first with create_ai_system")
        rows = reason_codes_read(file)
        try:
            result = reason_codes_load(system=ai_system, rows=rows, actor=actor)
        except WorkbenchError as exc:
            raise CommandError(f"{file}: {exc.message}") from None
        if not result.changed:
            self.stdout.write(
                f"unchanged: the {system} catalog already matches {file} ({result.unchanged} codes)"
            )
            return
        self.stdout.write(
            f"loaded the {system} catalog from {file}: {result.created} created, "
            f"{result.updated} updated, {result.deactivated} deactivated, "
            f"{result.unchanged} unchanged"
        )
        self.stdout.write(f"sha256: {result.sha256}")
