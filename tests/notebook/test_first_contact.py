"""What a new user reads where no widget can show (a console, a headless run, an exported notebook)."""
from __future__ import annotations

from nbhelpers import PREP, TRAIN, write_helper


def test_the_designer_says_what_it_holds_in_text(ip, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(type(ip.magics_manager.registry["PipelineMagics"]), "_widgets", lambda self: True)
    write_helper(tmp_path)
    for cell in (PREP, TRAIN):
        ip.run(cell.strip())
    capsys.readouterr()
    ip.run("%pipeline show")
    shown = capsys.readouterr().out
    assert "VBox(" not in shown  # no widget repr
    assert "Pipeline designer: 2 steps" in shown
    assert "  prep: - -> data" in shown and "  train: data -> model" in shown
