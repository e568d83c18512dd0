"""Query-time code, shared by the API and the workers: sentence segmentation (``text``), the
embedders, hybrid search and fusion (``search``), extractive answers and the "model, else
extracts" rule (``answer``), the model client (``llm``) and what answers are made of
(``citations``). ``ingest`` keeps parsing and the pipeline, and imports from here."""
