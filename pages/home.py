"""Home: what the explorer is, and the four labs with links to those that exist."""

import streamlit as st

from core.labs import LABS
from pages._shared import asset_text

st.title("Image classification explorer")
st.markdown(asset_text("home.md"))

columns = st.columns(2)
for index, lab in enumerate(LABS):
    with columns[index % 2].container(border=True):
        st.subheader(lab.title)
        st.write(lab.summary)
        if lab.exists:
            st.page_link(lab.page_file, label=f"Open the {lab.title.lower()}", icon=lab.icon)
        else:
            st.caption("Not built yet: this lab arrives in a coming release.")
