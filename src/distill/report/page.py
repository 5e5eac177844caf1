"""The report as one self-contained HTML page: pictures as PNG and players as WAV data URIs, no
script, nothing fetched, so the file can be mailed, archived or opened from a USB stick.

Every text that comes from a file (model, file and slider names, notes) is HTML-escaped."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from html import escape

from distill.report.content import CLIP_SECONDS, PLAYER_RATE, ReportContent
from distill.training.loop import LAST_WEIGHTS_MARGIN

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; color: #282c34; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; }
h1 { margin-bottom: 0.1em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #dde; }
.meta { color: #667; font-size: 13px; }
.score { display: flex; gap: 2em; align-items: center; background: #f3f6fb;
         border: 1px solid #cfd8e6; border-radius: 8px; padding: 0.8em 1.2em; margin: 1em 0; }
.score .number { font-size: 44px; font-weight: 700; color: #1d4f91; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { padding: 0.25em 0.8em 0.25em 0; text-align: left; vertical-align: top; }
.files td { border-top: 1px solid #e5e8ee; padding-top: 0.6em; }
.files audio { width: 240px; height: 36px; display: block; margin: 0.2em 0; }
.files img { max-width: 100%; height: auto; } .curves { max-width: 100%; }
.note { color: #8a5a00; }
"""


def render(content: ReportContent) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(content.name)} — Distill model report</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(content.name)}</h1>",
        f'<p class="meta">Distill model report, made {_now()} · '
        + (f"id {escape(content.model_id)} · " if content.model_id else "")
        + f"file {escape(str(content.model_file))}</p>",
        _score(content),
        _summary(content),
        _curves(content),
        _files(content),
        _sliders(content),
        _corpus(content),
        _notes(content),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _number(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _score(content: ReportContent) -> str:
    held_out = content.mean_mrstft("validation")
    training = content.mean_mrstft("training")
    count = sum(r.split == "validation" for r in content.rows)
    if held_out is None:
        return (
            '<div class="score" id="heldout"><div>No held-out files could be resynthesized, so '
            "there is no held-out MR-STFT figure.</div></div>"
        )
    trained_on = sum(r.split == "training" for r in content.rows)
    comparison = (
        f" On {trained_on} training files it is {training:.2f} (a much lower figure there than "
        "here would mean it learned its files by heart rather than the sound)."
        if training is not None
        else ""
    )
    return (
        '<div class="score" id="heldout">'
        f'<div class="number" id="heldout-mrstft">{held_out:.2f}</div>'
        "<div><b>Held-out MR-STFT</b>: how far the model's resynthesis of "
        f"{count} recording{'s' if count != 1 else ''} it never trained on is from the "
        "original (multi-resolution spectral distance; 0 = identical, lower is better)."
        f"{comparison}"
        "</div></div>"
    )


def _summary(content: ReportContent) -> str:
    s = content.summary
    epochs = _number(s.get("epochs"), 6)
    best_loss = f", validation loss {s['best_val_total']:.4g}" if s.get("best_val_total") else ""
    if s.get("weights") == "last" and s.get("weights_epoch"):
        epochs += (
            f" (the saved model holds the last weights, epoch {s['weights_epoch']}: the schedule"
            f" ran to its end; best validation epoch {s.get('best_epoch') or '–'}{best_loss})"
        )
    elif s.get("best_epoch"):
        epochs += f" (the saved model is from epoch {s['best_epoch']}{best_loss})"
    if s.get("stopped"):
        epochs += f"; stopped early: {escape(str(s['stopped']))}"
    files = "–"
    if s.get("train_files") is not None:
        files = f"{s['train_files']} training + {s.get('validation_files') or 0} validation files"
    rows = [
        ("data", f"{escape(str(s.get('dataset') or '–'))} ({files})"),
        ("preset", escape(str(s.get("preset") or "–"))),
        ("epochs", epochs),
        ("training time", "–" if s.get("minutes") is None else f"{s['minutes']:.1f} minutes"),
        ("speed", "–" if s.get("samples_per_s") is None else f"{s['samples_per_s']:.1f} samples/s"),
        ("trained", escape(str(s.get("trained") or "–"))),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<h2>Training</h2><table id="summary">{body}</table>'


def _curves(content: ReportContent) -> str:
    if content.loss_png is None:
        reason = escape(content.no_curves or "")
        return f'<h2>Loss curves</h2><p class="note" id="no-curves">{reason}</p>'
    return (
        "<h2>Loss curves</h2>"
        f'<img class="curves" id="loss-curves" alt="loss curves per epoch" '
        f'src="{_data_uri("image/png", content.loss_png)}">'
        "<p>Each chart is one part of the loss, per epoch: training files in blue, the held-out "
        "validation files in red. When the red line turns up while the blue one keeps falling, "
        "the model is learning its training files by heart. The green line is the best "
        "validation epoch: a run cut short saves that one; a run whose schedule ran to its end "
        f"saves its last weights unless their validation loss is more than {LAST_WEIGHTS_MARGIN} "
        "above it.</p>"
    )


def _files(content: ReportContent) -> str:
    if not content.rows:
        return ""
    intro = (
        "<h2>Your recordings through the model</h2>"
        f"<p>Each recording (its first {CLIP_SECONDS:g} s at most) is encoded and decoded by "
        "the model, as <code>distill resynth</code> does, and measured against the original. "
        f"Players at {PLAYER_RATE / 1000:g} kHz; the two spectrograms of a row share one colour "
        "scale, so a resynthesis that is duller, noisier or quieter looks it. "
        "MR-STFT: 0 = identical, lower is better.</p>"
    )
    sections = [intro]
    for split, title in (
        ("training", "Training files"),
        ("validation", "Validation files (held out: never trained on)"),
    ):
        rows = [r for r in content.rows if r.split == split]
        if not rows:
            continue
        body = "".join(
            f'<tr class="file-row" data-split="{split}"><td><b>{escape(r.name)}</b><br>'
            f"MR-STFT <b>{r.mrstft:.2f}</b><br>"
            f"original{_player(r.original_wav)}resynthesis{_player(r.resynthesis_wav)}</td>"
            f"<td>{_spectrogram(r.original_png, 'original', r.name)}</td>"
            f"<td>{_spectrogram(r.resynthesis_png, 'resynthesis', r.name)}</td></tr>"
            for r in rows
        )
        sections.append(f'<h3>{title}</h3><table class="files" id="{split}">{body}</table>')
    return "".join(sections)


def _spectrogram(png: bytes, what: str, name: str) -> str:
    return (
        f'<img class="spectrogram" alt="spectrogram of {escape(name)}: {what}" '
        f'src="{_data_uri("image/png", png)}">'
    )


def _player(wav: bytes) -> str:
    return f'<audio controls preload="metadata" src="{_data_uri("audio/wav", wav)}"></audio>'


def _sliders(content: ReportContent) -> str:
    if not content.sliders:
        return (
            '<h2>Sliders</h2><p class="note">This model has no sliders (its latent analysis is '
            "missing): <code>distill model analyze</code> with its training folder finds them.</p>"
        )
    body = "".join(
        f'<tr class="slider"><td>{s.number}</td><td><b>{escape(s.label)}</b></td>'
        f"<td>{100 * s.variance:.1f} %</td>"
        f"<td>{s.safe_range[0]:+.1f} … {s.safe_range[1]:+.1f}</td><td>{escape(s.changes)}</td></tr>"
        for s in content.sliders
    )
    return (
        "<h2>Sliders</h2><p>The model's musical controls, from −10 to +10 (0 leaves a take "
        "where it is). Inside the safe range the model has heard material like it; beyond it, it "
        "improvises.</p>"
        '<table id="sliders"><tr><th>#</th><th>slider</th><th>share of the variation</th>'
        f"<th>safe range</th><th>across its range</th></tr>{body}</table>"
    )


def _corpus(content: ReportContent) -> str:
    c = content.corpus
    if c is None:
        return (
            '<h2>What it remembers</h2><p class="note">This model has no corpus memory (it was '
            "made before it existed): <code>distill model analyze</code> with its training folder "
            "adds it.</p>"
        )
    mode = (
        "one-shots: one event per take, ending with its natural decay"
        if c["mode"] == "oneshot"
        else "textures: takes of any length, made of stretches and events of your recordings"
    )
    rows = [
        ("generates", mode),
        ("one-shot share", f"{100 * c['oneshot_share']:.0f} % of the recordings are one-shots"),
        ("typical event", f"{c['event_seconds']:.2f} s"),
        ("typical recording", f"{c['typical_seconds']:.2f} s"),
        ("recordings remembered", f"{c['files']} ({c['chunks']} chunks)"),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<h2>What it remembers</h2><table id="corpus">{body}</table>'


def _notes(content: ReportContent) -> str:
    if not content.notes:
        return ""
    items = "".join(f"<li>{escape(n)}</li>" for n in content.notes)
    return f'<h2>Notes</h2><ul class="note" id="notes">{items}</ul>'


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
