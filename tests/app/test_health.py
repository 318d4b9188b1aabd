"""Model health page and the representation panel, with AppTest."""

import io
import pickle

import torch

from tests.app.conftest import captions, run_until


def _metrics(at):
    return {m.label: m.value for m in at.metric}


def test_minilm_health_and_random_baseline(app):
    at = app
    at.switch_page("views/health.py")
    at = run_until(at, lambda a: a.metric or a.exception or a.error, timeout=240)
    assert not at.exception and not at.error
    m = _metrics(at)
    assert m["mean alpha (FARMS)"] == "6.77"  # all-MiniLM-L6-v2, 39 layers
    # the counters and the band caption follow the alpha shown (issue 17 item 23)
    # (18 of 39 FARMS alphas above 6, none below 2; the plain fit: 4 and 1)
    assert (m["layers, FARMS alpha < 2"], m["layers, FARMS alpha > 6"]) == ("0", "18")
    assert "count the FARMS alphas" in captions(at)
    at.toggle(key="health_farms").set_value(False).run()
    m = _metrics(at)
    assert m["mean alpha (plain)"] == "4.12"
    assert (m["layers, plain alpha < 2"], m["layers, plain alpha > 6"]) == ("1", "4")
    assert "count the plain alphas" in captions(at)
    at.selectbox(key="health_compare").set_value("random_init")
    at = run_until(at, lambda a: len(a.metric) >= 6 or a.exception or a.error, timeout=240)
    assert not at.exception and not at.error
    values = [m.value for m in at.metric if m.label == "layers, plain alpha > 6"]
    trained, random = int(values[0]), int(values[1])
    assert random > trained  # a random init looks under-trained in most layers


def test_weights_upload_refuses_pickled_code(app, tmp_path):
    at = app
    at.switch_page("views/health.py")
    at.run()
    flag = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(flag), "w"))

    buf = io.BytesIO()
    torch.save({"w": Evil()}, buf)
    at.file_uploader(key="model_upload").upload("model.pt", buf.getvalue())
    at.run()
    at.button(key="model_add").click().run()
    assert not at.exception
    assert any("model.pt" in e.value and ("arbitrary" in e.value or "code" in e.value)
               for e in at.error), [e.value for e in at.error]
    assert not flag.exists()


def test_representation_panel_on_digits(app):
    at = run_until(app, lambda a: "points drawn" in captions(a) or a.exception)
    next(b for b in at.button if b.label == "Compute representation diagnostics").click()
    at = run_until(at, lambda a: any(m.label == "RankMe" for m in a.metric) or a.exception or a.error)
    assert not at.exception and not at.error
    m = _metrics(at)
    assert 1 < float(m["RankMe"]) < 64
    assert any("DSMI with the label" in md.value for md in at.markdown)


def test_representation_panel_with_fewer_rows_than_dimensions(app):
    """Issue 17 item 18: 12 rows in 30 dimensions are not refused; the panel shows every
    measure that is defined and says which one was skipped and why."""
    import numpy as np
    import pandas as pd

    at = app
    at.switch_page("views/upload.py")
    at.run()
    X = np.random.default_rng(0).normal(size=(12, 30))
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(30)])
    at.file_uploader(key="upload_file").upload("wide.csv", df.to_csv(index=False).encode(),
                                               "text/csv")
    at.run()
    at.number_input(key="upload_k").set_value(5)  # the upload asks 16 rows by default
    at.button(key="upload_add").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Stored **wide**: 12 rows × 30 dimensions" in at.success[0].value
    at.switch_page("views/map.py")
    at = run_until(at, lambda a: "points drawn" in captions(a) or a.exception or a.error)
    assert "12 of 12 points drawn" in captions(at)
    next(b for b in at.button if b.label == "Compute representation diagnostics").click()
    at = run_until(at, lambda a: any(m.label == "RankMe" for m in a.metric) or a.exception
                   or a.error)
    assert not at.exception and not at.error, [e.value for e in at.error]
    m = _metrics(at)
    assert 1 < float(m["RankMe"]) <= 12 and m["MP spikes"] == "–", (m, captions(at)[:300])
    notes = [i.value for i in at.info]
    assert any("12 rows in 30 dimensions" in n and "RankMe is capped at 12" in n
               and "Skipped: mp_num_spikes" in n for n in notes), notes
