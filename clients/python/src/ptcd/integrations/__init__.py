"""Adapters from agent frameworks' tools to one ``run_code`` tool backed by ptcd.

Each adapter is a separate module, imported on demand, and needs its framework installed (the
core ``ptcd`` package has no dependencies):

* ``ptcd.integrations.pydantic_ai`` — ``pip install 'ptcd[pydantic-ai]'``
* ``ptcd.integrations.openai_agents`` — ``pip install 'ptcd[openai-agents]'``
* ``ptcd.integrations.langchain`` — ``pip install 'ptcd[langchain]'`` (LangChain tools, LangGraph agents)

In every one, the framework's own tool objects stay the source of truth: their schemas become the
stubs the model reads, their validation and context (deps, run context, ``RunnableConfig``) apply
to each call the script makes, and an error raised by a tool reaches the script as ``ToolError``.
"""
