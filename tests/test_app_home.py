"""The home page and the shared sidebar, through Streamlit's AppTest."""

from __future__ import annotations

import json
import subprocess
import sys

from streamlit.testing.v1 import AppTest

from core.labs import LABS, ROOT


def run_home() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()


def test_home_explains_all_four_labs():
    """The home page shows the title and a card for each of the four labs."""
    at = run_home()
    assert not at.exception
    assert at.title[0].value == "Image classification explorer"
    assert sorted(header.value for header in at.subheader) == sorted(lab.title for lab in LABS)
    shown = " ".join(block.value for block in at.markdown)
    for lab in LABS:
        assert lab.summary in shown


def test_labs_without_a_page_are_not_linked():
    """A lab whose page file does not exist yet says so instead of linking to nothing."""
    at = run_home()
    missing = [lab for lab in LABS if not lab.exists]
    captions = [caption.value for caption in at.caption]
    assert sum("Not built yet" in caption for caption in captions) == len(missing)


def test_sidebar_shows_where_training_runs():
    """The sidebar names the device: a GPU, or CPU only with the core count."""
    at = run_home()
    sidebar_text = " ".join(
        [element.value for element in at.sidebar.info] + [element.value for element in at.sidebar.success]
    )
    assert "CPU only" in sidebar_text or "Training runs on" in sidebar_text
    assert "Keras backend" in sidebar_text


def test_presentation_mode_from_url_and_switch():
    """?present=1 turns presentation mode on, and the switch turns it off again."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.query_params["present"] = "1"
    at.run()
    toggle = at.sidebar.toggle(key="present")
    assert toggle.value is True
    assert any("font-size: 22px" in html.proto.body for html in at.get("html"))
    toggle.set_value(False).run()
    assert not any("font-size: 22px" in html.proto.body for html in at.get("html"))


def test_home_page_does_not_import_tensorflow():
    """Rendering the home page leaves tensorflow and keras unimported (a fresh process)."""
    code = (
        "import json, sys; from streamlit.testing.v1 import AppTest;"
        f"at = AppTest.from_file({str(ROOT / 'app.py')!r}, default_timeout=30).run();"
        "print(json.dumps([bool(at.exception), 'tensorflow' in sys.modules, 'keras' in sys.modules]))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert json.loads(output.strip().splitlines()[-1]) == [False, False, False]
