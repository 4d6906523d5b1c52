"""hemo: intracranial haemorrhage on brain CT, with Grad-CAM and attention. Run: streamlit run streamlit_app.py"""

from hemo.app.main import run

run()
