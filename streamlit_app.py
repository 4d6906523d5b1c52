"""hemo: intracranial haemorrhage on brain CT slices, with Grad-CAM and attention. Run: streamlit run streamlit_app.py"""

import streamlit as st

st.set_page_config(page_title="hemo — CT haemorrhage", page_icon=":material/neurology:", layout="wide")
st.navigation([
    st.Page("hemo/app/analyse.py", title="Analyse slices", icon=":material/search:", default=True),
    st.Page("hemo/app/dashboard.py", title="Training dashboard", icon=":material/monitoring:"),
    st.Page("hemo/app/about.py", title="About / model card", icon=":material/info:"),
]).run()
