"""The Streamlit app: a thin layer of pages over the hemo library."""
