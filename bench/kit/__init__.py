"""The bench's kit, shared by its figures: the run and its processes (harness), the bench's
own reads of PostgreSQL (database), scans driven from the bench process (scans), the
in-process page stopwatch (breakdown), stored rows (dataset), the hop's tasks and bare apps
(hop, hop_apps, tasks) and the report. Figures import the kit; the kit imports no figure
(pyproject.toml's import-linter contract)."""
