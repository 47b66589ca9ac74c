"""Benchmarks of the inference methods (Tu & Gimpel 2019, Tables 3 and 6, Figures 1 and 2, §6.2).

Modules:
    harness: ``python -m spacy_infnet bench`` — speed, accuracy / F1, energy and search error of
        every decoder on a trained pipeline, with Markdown tables and PNG figures.
    metrics: the seqeval metric as a local ``evaluate`` module (works offline).
    likelihood: search error against LSTM language-model perplexity (§6.2).

This layer sits on top of ``core``, ``data`` and ``pipeline``; nothing below imports it.
"""


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or ``platform.processor()`` where that is
    unavailable."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
