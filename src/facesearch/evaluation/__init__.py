"""Accuracy and error-rate evaluation of the engine on labelled folders (faces-dev, LFW, or any folder like them)."""

from facesearch.evaluation.report import LabelledSet, evaluate, load_labelled_set

__all__ = ["LabelledSet", "evaluate", "load_labelled_set"]
