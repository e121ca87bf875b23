"""Starts the app like `streamlit run app.py`, with routing left to st.navigation from the first request.

Streamlit treats a `pages/` folder beside the entry script as a legacy multipage app until
`st.navigation` has run once: a first visitor who opens a lab's link directly (say a
lecturer's `/shallow_nets?neurons=392` link) would get the legacy page list instead of the
app. Marking the folder as not-a-page-directory before the server starts avoids that;
`app.py` routes every page itself. Arguments are passed on to `streamlit run`.
"""

import sys
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    PagesManager.uses_pages_directory = False
    sys.argv = ["streamlit", "run", str(ROOT / "app.py"), *sys.argv[1:]]
    sys.exit(cli.main())
