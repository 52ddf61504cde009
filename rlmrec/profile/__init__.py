"""LLM-written user and item profiles (``rlmrec profile``) and API embeddings of them
(``rlmrec embed --base-url``), through any OpenAI-compatible server.

Modules: ``inputs`` (what a prompt may use: training data only), ``prompts`` (the
prompt files and the messages built from them), ``answers`` (parsing), ``client`` (the
server, retries), ``cache`` (every answer stored as it arrives), ``costs`` (token
estimates, prices), ``generate`` (the run), ``embed_api`` (embeddings).
"""
