"""The pipeline's plumbing: profiles (`config`), where things live (`paths`), shared artifacts built once and
verified when loaded (`artifacts`), the source files a job runs (`codegraph`), notebooks run by Papermill
(`notebooks`), the numbers each notebook writes (`report`), their LaTeX macros (`macros`), the paper
(`paper`) and the scoring benchmark (`bench`). Submodules load on first use.
"""
from ..lazy import submodules

__getattr__, __dir__ = submodules(__name__, ("artifacts", "bench", "codegraph", "config", "macros", "notebooks",
                                             "paper", "paths", "report"), globals())
