"""Which tables a map render sends: each once, again only when the browser reports it lacks
one after the render that carried it (components/map/component.py ``_to_send``)."""

from components.map.component import _to_send

IDS = {"coords": "c1", "color": "k1", "density": "d1"}


def test_first_render_sends_every_table_and_is_numbered():
    sent = {"seq": 0}
    assert _to_send({}, sent, IDS) == ["coords", "color", "density"]
    assert sent == {"seq": 1, "coords": ("c1", 1), "color": ("k1", 1), "density": ("d1", 1)}


def test_a_rerun_before_the_browser_reports_sends_nothing_again():
    sent = {"seq": 0}
    _to_send({"coords": "c1", "color": "k1", "seq": 0}, sent, IDS)  # density sent in render 1
    # a rerun that started before the browser's report on render 1 arrived: still render 0's
    assert _to_send({"coords": "c1", "color": "k1", "seq": 0}, sent, IDS) == []
    assert sent["seq"] == 1  # nothing sent: the message keeps its number (cache hit)
    assert _to_send({"coords": "c1", "color": "k1", "density": "d1", "seq": 1}, sent, IDS) == []


def test_a_table_lost_on_the_way_is_sent_again_once_the_browser_says_so():
    sent = {"seq": 4, "coords": ("c1", 2), "color": ("k1", 2), "density": ("d1", 4)}
    # render 4 (with the density) never arrived; render 5 carried number 4, and the browser,
    # finding the density missing, reports so after render 4
    assert _to_send({"coords": "c1", "color": "k1", "density": None, "seq": 4}, sent, IDS) == ["density"]
    assert sent["seq"] == 5 and sent["density"] == ("d1", 5)


def test_a_table_the_browser_dropped_is_sent_again():
    sent = {"seq": 3, "coords": ("c1", 1), "color": ("k1", 1), "density": ("d1", 3)}
    have = {"coords": None, "color": "k1", "density": "d1", "seq": 3}  # evicted from its cache
    assert _to_send(have, sent, IDS) == ["coords", "color"]  # colours come with coordinates


def test_a_new_table_is_sent_even_while_another_is_on_its_way():
    sent = {"seq": 1, "coords": ("c1", 1), "color": ("k1", 1), "density": ("d1", 1)}
    ids = {**IDS, "color": "k2"}
    assert _to_send({"seq": 0}, sent, ids) == ["color"]
    assert sent["seq"] == 2 and sent["coords"] == ("c1", 1)
