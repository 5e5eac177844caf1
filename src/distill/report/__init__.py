"""A model report a musician can read: one self-contained HTML page with the loss curves, a few
of the recordings next to the model's resynthesis of them, the held-out MR-STFT, the sliders and
what the model remembers.

It sits above generation and below the CLI and the UI: it may use audio, spectral, model,
controls, training, library and generation; nothing below imports it.

    from distill.report import write_report
    path = write_report(entry.path, run=Path(entry.run), out=Path(entry.run) / "report")
"""

from distill.report.make import REPORT_DIR, REPORT_FILE, report_folder, run_of, write_report

__all__ = ["REPORT_DIR", "REPORT_FILE", "report_folder", "run_of", "write_report"]
