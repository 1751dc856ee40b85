"""``faice export``: a finished experiment's provenance as a Workflow Run RO-Crate (the work is
faice.provenance's)."""

from __future__ import annotations

from pathlib import Path

import typer

from faice.cli.app import app, open_store


@app.command()
def export(
    ctx: typer.Context,
    experiment_id: str = typer.Argument(..., metavar="EXPERIMENT_ID", help="The experiment (or a unique start of its id, 4 characters at least)."),
    ro_crate: Path = typer.Option(..., "--ro-crate", metavar="DIR|FILE.zip", help="Where to write the crate: a new (or empty) directory, or a zip file."),
    include_inputs: bool = typer.Option(False, "--include-inputs", help="Copy the inputs on this machine into the crate (else they are referenced where they are)."),
    outputs_by_reference: bool = typer.Option(False, "--outputs-by-reference", help="Reference the outputs where they are instead of copying them into the crate."),
) -> None:
    """Export a finished experiment as a Workflow Run RO-Crate (Process Run Crate 0.5).

    One CreateAction per batch (times, state, exit code, attempts), the tool (tool.cwl), the
    container image with its sha256, the inputs by reference and the outputs and logs, each file
    with size and sha256, faice's version and the host. Secrets stay masked or left out.

    Examples:

      faice export 6751a3c2 --ro-crate run-crate/

      faice export 6751a3c2 --ro-crate run.zip --include-inputs
    """
    from faice.provenance.export import export as write_crate
    from faice.view import size

    written = write_crate(open_store(ctx), experiment_id, ro_crate, include_inputs=include_inputs, outputs_by_reference=outputs_by_reference)
    typer.echo(f"wrote {written.path}: {written.files} files, {size(written.size)}")
