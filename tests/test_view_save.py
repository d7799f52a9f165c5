"""Every view saves itself (``save(path)``) and the toolbar's HTML/SVG/PNG buttons write a file
beside the notebook; ``live()`` leaves a picture of its final drawing in the output."""
from __future__ import annotations

import pytest

import dyntorch as dt

pytest.importorskip("anywidget")

from dyntorch.viz import live_view, stepper_view, widget  # noqa: E402


def _loss():
    m = dt.nn.Sequential(dt.nn.Linear(3, 4), dt.nn.ReLU(), dt.nn.Linear(4, 1))
    x = dt.randn(5, 3)
    return m, m(x).pow(2).mean()


@pytest.mark.parametrize("suffix", ["svg", "html", "png"])
def test_save_on_show_stepper_and_live_views(tmp_path, suffix):
    m, loss = _loss()
    views = [widget.show(loss, model=m)]
    s = dt.debug.BackwardStepper(loss)
    views.append(stepper_view.stepper_widget(s, model=m))
    with live_view.live(display=False, model=m, interval=0) as lv:
        m(dt.randn(2, 3)).sum()
    views.append(lv)
    for k, v in enumerate(views):
        p = v.save(tmp_path / f"v{k}.{suffix}")
        assert p.exists() and p.stat().st_size > 200
        if suffix == "svg":
            text = p.read_text()
            assert "<svg" in text and "relu" in text.lower()
        elif suffix == "html":
            text = p.read_text()
            assert 'id="dt-doc"' in text and "relu" in text.lower()
        else:
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    s.close()


def test_toolbar_export_message_writes_next_file_and_reports_path(tmp_path):
    m, loss = _loss()
    w = widget.show(loss, model=m)
    w.export_dir = tmp_path
    for k in (1, 2):
        w._on_msg(w, {"type": "export", "format": "svg"}, [])
        reply = w.sent[-1]
        assert reply["type"] == "exported" and "error" not in reply, reply
        assert reply["path"] == str(tmp_path / f"dyntorch-graph-{k}.svg")
        assert "<svg" in (tmp_path / f"dyntorch-graph-{k}.svg").read_text()
    w._on_msg(w, {"type": "export", "format": "pdf"}, [])
    assert w.sent[-1]["type"] == "exported" and "pdf" in w.sent[-1]["error"]
    assert not list(tmp_path.glob("*.pdf"))


def test_save_refuses_unknown_suffix(tmp_path):
    m, loss = _loss()
    with pytest.raises(ValueError, match=r"\.html, \.svg or \.png"):
        widget.show(loss, model=m).save(tmp_path / "g.jpg")


def test_live_leaves_the_final_picture_in_a_second_output(monkeypatch):
    import IPython.display as D

    calls = []

    class Handle:
        def update(self, obj):
            calls.append(("update", obj._repr_mimebundle_()))

    def fake_display(obj, display_id=None):
        calls.append(("display", display_id, obj))
        return Handle() if display_id else None

    monkeypatch.setattr(D, "display", fake_display)
    m = dt.nn.Sequential(dt.nn.Linear(3, 4), dt.nn.Tanh())
    with live_view.live(model=m, interval=0) as lv:
        m(dt.randn(2, 3)).sum()
    assert calls[0] == ("display", None, lv)  # the widget, once
    assert calls[1][1] is True  # the placeholder for the picture
    empty = calls[1][2]._repr_mimebundle_()["text/html"]
    assert "<svg" not in empty
    kind, bundle = calls[-1]
    assert kind == "update" and len(calls) == 3
    html = bundle["text/html"]
    assert html.startswith('<div class="dt-static-picture">') and "<svg" in html
    assert "tanh" in html.lower()
    assert lv.error is None


def test_png_rasterised_by_the_front_end_is_checked_and_written(tmp_path):
    import base64
    import struct
    import zlib

    def png(w, h):
        raw = b"".join(b"\x00" + b"\xff\x00\x00" * w for _ in range(h))
        chunk = lambda t, d: (struct.pack(">I", len(d)) + t + d  # noqa: E731
                              + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF))
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

    m, loss = _loss()
    w = widget.show(loss, model=m)
    w.export_dir = tmp_path
    data = png(3, 2)
    w._on_msg(w, {"type": "export", "format": "png", "png": base64.b64encode(data).decode()}, [])
    assert w.sent[-1]["name"] == "dyntorch-graph-1.png"
    assert (tmp_path / "dyntorch-graph-1.png").read_bytes() == data
    w._on_msg(w, {"type": "export", "format": "png",
                  "png": base64.b64encode(b"<svg/>").decode()}, [])
    assert "not a PNG" in w.sent[-1]["error"]
    w._on_msg(w, {"type": "export", "format": "png", "png": "%%%"}, [])
    assert "not base64" in w.sent[-1]["error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dyntorch-graph-1.png"]
