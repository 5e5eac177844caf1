"""`distill ui`: a local Gradio page, one module per tab, over the same functions the CLI calls.

`build_app(home)` returns the `gr.Blocks`; `launch(...)` serves it on 127.0.0.1 (see app.py).
"""
