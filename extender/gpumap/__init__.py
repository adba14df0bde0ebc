"""The GPU map: a read-only page of where the cluster's GPUs go (/ui) and its data (/api/v1/cluster).

model.py builds the data from the extender's state (pure); http.py serves it and the page (page.html, one
file with its CSS and JS inline: clusters are often air-gapped, so nothing is fetched from elsewhere).
"""

from extender.gpumap.model import FilterReasons, Figures, GroupIndex, History, figures, group_detail, summary

__all__ = ["FilterReasons", "Figures", "GroupIndex", "History", "figures", "group_detail", "summary"]
