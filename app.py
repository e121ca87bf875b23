"""Entry point: routes the labs with st.navigation and draws the shared sidebar."""

import streamlit as st

from core.labs import available_labs
from pages._classroom import classroom_sidebar
from pages._shared import presentation_mode, sidebar_device_badge

st.set_page_config(page_title="Image classification explorer", page_icon=":material/visibility:", layout="wide")

home = st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)
labs = [st.Page(lab.page_file, title=lab.title, icon=lab.icon, url_path=lab.url_path) for lab in available_labs()]
page = st.navigation([home, *labs])

with st.sidebar:
    presentation_mode()
    sidebar_device_badge()
    classroom_sidebar()

page.run()
