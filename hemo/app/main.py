"""The app's entry point: ``streamlit run streamlit_app.py`` in a checkout, ``hemo app`` where hemo is installed.

The pages are named by their paths beside this file, so the app is the same wherever the package lies.
"""

from __future__ import annotations

from pathlib import Path

PAGES = Path(__file__).resolve().parent


def run() -> None:
    """Set up and run the three pages; the model starts loading in the background at once."""
    from hemo.runtime import quiet_tensorflow

    quiet_tensorflow()  # before TensorFlow loads: no CUDA probe messages on machines without a GPU
    import streamlit as st

    from hemo.app import resources

    resources.keep_tensorflow_kernels()
    st.set_page_config(page_title="hemo — CT haemorrhage", page_icon=":material/neurology:", layout="wide")
    resources.start_loading(str(resources.model_path()))  # load and warm in the background from the start
    st.navigation([
        st.Page(PAGES / "analyse.py", title="Analyse", icon=":material/search:", default=True),
        st.Page(PAGES / "dashboard.py", title="Training dashboard", icon=":material/monitoring:"),
        st.Page(PAGES / "about.py", title="About / model card", icon=":material/info:"),
    ]).run()


if __name__ == "__main__":
    run()
