"""hemo: intracranial haemorrhage on brain CT, with Grad-CAM and attention. Run: streamlit run streamlit_app.py"""

from hemo.runtime import quiet_tensorflow

quiet_tensorflow()  # before TensorFlow loads: no CUDA probe messages on machines without a GPU

import streamlit as st  # noqa: E402

from hemo.app import resources  # noqa: E402

resources.keep_tensorflow_kernels()
st.set_page_config(page_title="hemo — CT haemorrhage", page_icon=":material/neurology:", layout="wide")
resources.start_loading(str(resources.model_path()))  # load and warm in the background from the start
st.navigation([
    st.Page("hemo/app/analyse.py", title="Analyse", icon=":material/search:", default=True),
    st.Page("hemo/app/dashboard.py", title="Training dashboard", icon=":material/monitoring:"),
    st.Page("hemo/app/about.py", title="About / model card", icon=":material/info:"),
]).run()
